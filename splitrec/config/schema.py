"""The JSON Schema of each config file kind, for editors and the docs page."""

from __future__ import annotations

from typing import Any, Literal

from splitrec.config.job import JobFile
from splitrec.config.limits import JOB_LIMITS, Limit
from splitrec.config.party import PartyConfig

KINDS = ("party", "job")


def _bounds(limit: Limit) -> dict[str, Any]:
    low = "exclusiveMinimum" if limit.above else "minimum"
    if limit.integer:
        return {low: int(limit.low), "maximum": int(limit.high)}
    return {low: limit.low, "maximum": limit.high}


def _property(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of ``key`` (a dotted path of the job file)."""
    current = schema
    for part in key.split("."):
        found = current.get("properties", {}).get(part)
        if found is None:
            return None
        options = found.get("anyOf", [found])
        ref = next((o["$ref"] for o in options if "$ref" in o), None)
        current = schema["$defs"][ref.rsplit("/", 1)[1]] if ref else found
    return current


def json_schema(kind: Literal["party", "job"]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``party`` or a ``job`` config file."""
    if kind == "party":
        schema = PartyConfig.model_json_schema()
        # ``label`` is read into ``labels``: the file may give either.
        schema["properties"]["label"] = {
            "$ref": "#/$defs/LabelConfig",
            "description": "The label party's one label (a job of one task): its "
            "column and rule, without name and weight; or give 'labels'.",
        }
    elif kind == "job":
        schema = JobFile.model_json_schema()
        for key, limit in JOB_LIMITS.values():
            found = _property(schema, key)
            if found is not None:
                found.update(_bounds(limit))
    else:
        raise ValueError(f"unknown config kind {kind!r}; use one of {KINDS}")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
