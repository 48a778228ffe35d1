"""The config reference rendered from a hand-written JSON Schema."""

from __future__ import annotations

import pytest
from docgen.config_schema import SchemaError, render_schema, schema_sections

SCHEMA = {
    "title": "PartyConfig",
    "description": "One party's config.",
    "type": "object",
    "required": ["party", "features"],
    "properties": {
        "party": {"type": "string", "description": "This party's name"},
        "listen": {"type": "string", "default": "127.0.0.1:0"},
        "features": {
            "type": "array",
            "items": {
                "oneOf": [{"$ref": "#/$defs/Hashed"}, {"$ref": "#/$defs/Numeric"}],
                "discriminator": {"propertyName": "type"},
            },
        },
        "model": {"$ref": "#/$defs/Model", "description": "The party's model."},
        "datasets": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "default": {},
        },
        "tls": {"anyOf": [{"$ref": "#/$defs/Tls"}, {"type": "null"}], "default": None},
    },
    "$defs": {
        "Hashed": {
            "type": "object",
            "required": ["type", "name"],
            "properties": {
                "type": {"const": "hashed"},
                "name": {"type": "string"},
                "bins": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000,
                    "default": 1000,
                    "description": "Hash buckets | slots",
                },
            },
        },
        "Numeric": {
            "type": "object",
            "required": ["type", "name"],
            "properties": {
                "type": {"type": "string", "enum": ["numeric"]},
                "name": {"type": "string"},
                "scale": {
                    "type": "string",
                    "enum": ["standard", "minmax", "none"],
                    "default": "standard",
                },
            },
        },
        "Model": {
            "type": "object",
            "properties": {
                "family": {"type": "string", "default": "deepfm"},
                "deep_units": {
                    "type": "array",
                    "items": {"type": "integer", "exclusiveMinimum": 0},
                    "minItems": 1,
                    "default": [256, 32],
                },
                "aggregation": {"allOf": [{"$ref": "#/$defs/Aggregation"}]},
            },
        },
        "Aggregation": {
            "type": "object",
            "properties": {
                "method": {"enum": ["concat", "sum", "average"], "default": "concat"},
                "secure": {"type": "boolean", "default": False},
            },
        },
        "Tls": {
            "type": "object",
            "properties": {
                "insecure": {"type": "boolean", "default": False},
                "learning_rate": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 10,
                },
            },
        },
    },
}


def rows_by_key(kind: str = "party") -> dict[str, list[str]]:
    return {
        row[0].strip("`"): row
        for section in schema_sections(SCHEMA, kind)
        for row in section.rows
    }


def test_one_section_per_object_with_full_key_paths() -> None:
    sections = schema_sections(SCHEMA, "party")
    titles = [(s.path, s.variant) for s in sections]
    assert titles == [
        ("", ""),
        ("features[]", "type: hashed"),
        ("features[]", "type: numeric"),
        ("model", ""),
        ("model.aggregation", ""),
        ("tls", ""),
    ]
    keys = rows_by_key()
    assert "features[].bins" in keys
    assert "model.aggregation.secure" in keys
    assert "tls.learning_rate" in keys


def test_required_defaults_and_limits() -> None:
    keys = rows_by_key()
    assert keys["party"][2] == "required"
    assert keys["listen"][2] == "`127.0.0.1:0`"
    assert keys["model.deep_units"][2] == "`[256, 32]`"
    assert keys["model.aggregation.secure"][2] == "`false`"
    assert "From 1 to 100000." in keys["features[].bins"][3]
    assert "Must be > 0 and ≤ 10." in keys["tls.learning_rate"][3]
    assert "At least 1 item(s)." in keys["model.deep_units"][3]
    assert "One of `standard`, `minmax`, `none`." in keys["features[].scale"][3]


def test_types_link_to_the_sections_of_nested_objects() -> None:
    keys = rows_by_key()
    assert keys["model"][1] == "[object](#party-model)"
    assert keys["tls"][1] == "[object](#party-tls) or null"
    assert keys["datasets"][1] == "map of string"
    assert keys["model.deep_units"][1] == "list of integer"
    assert "(#party-features-type-hashed)" in keys["features"][1]
    assert "(#party-features-type-numeric)" in keys["features"][1]
    hashed, numeric = (
        {row[0]: row for row in section.rows}
        for section in schema_sections(SCHEMA, "party")
        if section.path == "features[]"
    )
    assert hashed["`features[].type`"][1] == "`hashed`"
    assert numeric["`features[].type`"][1] == "`numeric`"
    assert "`features[].bins`" not in numeric


def test_descriptions_are_sentences_and_the_reference_site_description_wins() -> None:
    keys = rows_by_key()
    assert keys["party"][3] == "This party's name."
    sections = {s.path: s for s in schema_sections(SCHEMA, "party")}
    assert sections["model"].description == "The party's model."


def test_markdown_has_anchored_headings_and_escaped_pipes() -> None:
    text = render_schema(SCHEMA, "party")
    assert "### Top level of a party config { #party-top }" in text
    assert "### `features[]` (`type: hashed`) { #party-features-type-hashed }" in text
    assert "### `model.aggregation` { #party-model-aggregation }" in text
    assert "Hash buckets \\| slots." in text
    for line in text.splitlines():
        if line.startswith("| `features[].bins`"):
            assert line.count(" | ") == 3


def test_a_recursive_definition_does_not_loop() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "child": {"$ref": "#/$defs/Node"},
                },
            }
        },
    }
    paths = [s.path for s in schema_sections(schema, "job")]
    assert paths == ["", "node"]


def test_a_reference_outside_the_schema_is_refused() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "other.json#/X"}}}
    with pytest.raises(SchemaError, match="other.json"):
        schema_sections(schema, "job")
