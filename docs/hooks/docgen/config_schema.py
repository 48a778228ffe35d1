"""The configuration reference, rendered from a config file's JSON Schema.

One section per object in the schema (the top level, each nested object, each
object inside a list or a map, each variant of a union), every key written by
its full path: `model.deep_units`, `features[].bins`, `datasets.<name>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docgen.markdown import anchor, cell, table

Schema = Mapping[str, Any]


@dataclass
class Section:
    """One object of the schema: where it sits and its keys' rows."""

    path: str
    variant: str
    description: str
    anchor: str
    rows: list[list[str]] = field(default_factory=list)


class SchemaError(ValueError):
    """The schema uses a reference this renderer cannot follow."""


class _Walker:
    def __init__(self, schema: Schema, kind: str) -> None:
        self.defs: Mapping[str, Schema] = {
            **schema.get("definitions", {}),
            **schema.get("$defs", {}),
        }
        self.kind = kind
        self.sections: list[Section] = []
        self.open_refs: dict[str, str] = {}

    def resolve(self, node: Schema) -> tuple[Schema, str | None]:
        """The node with `$ref` (or a lone `allOf`) followed; its sibling keys win."""
        ref_name = None
        while True:
            if "$ref" in node:
                ref = node["$ref"]
                name = ref.rsplit("/", 1)[-1]
                if not ref.startswith("#/") or name not in self.defs:
                    raise SchemaError(f"cannot follow $ref {ref!r}")
                ref_name = ref_name or name
                rest = {k: v for k, v in node.items() if k != "$ref"}
                node = {**self.defs[name], **rest}
            elif "allOf" in node and len(node["allOf"]) == 1:
                rest = {k: v for k, v in node.items() if k != "allOf"}
                node = {**node["allOf"][0], **rest}
            else:
                return node, ref_name

    def options(self, node: Schema) -> list[Schema]:
        """The members of a union, `null` left out; the node itself otherwise."""
        members = node.get("anyOf") or node.get("oneOf")
        if not members:
            return [node]
        return [m for m in members if m.get("type") != "null"]

    def is_object(self, node: Schema) -> bool:
        return "properties" in self.resolve(node)[0]

    def walk(self, node: Schema, path: str, variant: str = "") -> str:
        """Adds the object's section (and those below it); returns its anchor."""
        node, ref_name = self.resolve(node)
        if ref_name in self.open_refs:
            return self.open_refs[ref_name]
        section = Section(
            path=path,
            variant=variant,
            description=node.get("description", ""),
            anchor=anchor(self.kind, path or "top", variant),
        )
        if ref_name:
            self.open_refs[ref_name] = section.anchor
        self.sections.append(section)
        required = set(node.get("required", ()))
        nested: list[tuple[Schema, str]] = []
        for key, child in node.get("properties", {}).items():
            key_path = f"{path}.{key}" if path else key
            section.rows.append(self.row(key, key_path, child, required, nested))
        for child, child_path in nested:
            self.walk_value(child, child_path)
        if ref_name:
            del self.open_refs[ref_name]
        return section.anchor

    def walk_value(self, node: Schema, path: str) -> None:
        """Sections for every object a value may hold (a union: one per variant)."""
        resolved = self.resolve(node)[0]
        members = self.options(resolved)
        if members == [resolved]:
            members = [node]  # keeps its $ref, so a recursive definition stops
        objects = [m for m in members if self.is_object(m)]
        for member in objects:
            variant = self.variant_name(member) if len(objects) > 1 else ""
            self.walk(member, path, variant)
        for member in members:
            member = self.resolve(member)[0]
            if "items" in member and isinstance(member["items"], Mapping):
                self.walk_value(member["items"], f"{path}[]")
            extra = member.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                self.walk_value(extra, f"{path}.<name>")

    def variant_name(self, node: Schema) -> str:
        resolved = self.resolve(node)[0]
        for key, child in resolved.get("properties", {}).items():
            child = self.resolve(child)[0]
            if "const" in child:
                return f"{key}: {child['const']}"
            if len(child.get("enum", ())) == 1:
                return f"{key}: {child['enum'][0]}"
        return resolved.get("title", "variant")

    def row(
        self,
        key: str,
        key_path: str,
        child: Schema,
        required: set[str],
        nested: list[tuple[Schema, str]],
    ) -> list[str]:
        resolved = self.resolve(child)[0]
        if self.holds_object(resolved):
            nested.append((child, key_path))
        if key in required:
            default = "required"
        elif "default" in resolved and isinstance(resolved["default"], Mapping):
            default = (
                "its keys' defaults"
                if self.holds_object(resolved)
                else (_literal(resolved["default"]))
            )
        elif "default" in resolved:
            default = _literal(resolved["default"])
        else:
            default = ""
        notes = [_sentence(resolved.get("description", ""))]
        notes += _constraints(resolved)
        described = " ".join(n for n in notes if n)
        return [f"`{key_path}`", self.type_text(resolved, key_path), default, described]

    def holds_object(self, node: Schema) -> bool:
        for member in self.options(node):
            member = self.resolve(member)[0]
            if "properties" in member:
                return True
            items = member.get("items")
            if isinstance(items, Mapping) and self.holds_object(items):
                return True
            extra = member.get("additionalProperties")
            if isinstance(extra, Mapping) and extra and self.holds_object(extra):
                return True
        return False

    def type_text(self, node: Schema, path: str, variant: str = "") -> str:
        node = self.resolve(node)[0]
        members = node.get("anyOf") or node.get("oneOf")
        if members:
            objects = [m for m in members if self.is_object(m)]
            texts: list[str] = []
            for member in members:
                many = len(objects) > 1 and member in objects
                name = self.variant_name(member) if many else ""
                text = self.type_text(member, path, name)
                if text not in texts:
                    texts.append(text)
            return " or ".join(texts)
        if "const" in node:
            return _literal(node["const"])
        if len(node.get("enum", ())) == 1:
            return _literal(node["enum"][0])
        if "properties" in node:
            label = f"object ({variant})" if variant else "object"
            return f"[{label}](#{anchor(self.kind, path, variant)})"
        kind = node.get("type", "any")
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind == "array":
            items = node.get("items")
            inner = self.type_text(items, f"{path}[]") if items else "any"
            return f"list of {inner}"
        extra = node.get("additionalProperties")
        if kind == "object" and isinstance(extra, Mapping) and extra:
            return f"map of {self.type_text(extra, f'{path}.<name>')}"
        return kind


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if text and text[-1] not in ".!?)":
        text += "."
    return text


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _constraints(node: Schema) -> list[str]:
    notes = []
    if "enum" in node:
        notes.append("One of " + ", ".join(_literal(v) for v in node["enum"]) + ".")
    low, high = node.get("minimum"), node.get("maximum")
    low_x, high_x = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    bounds = []
    if low is not None and high is not None:
        notes.append(f"From {low} to {high}.")
        low = high = None
    if low is not None:
        bounds.append(f"≥ {low}")
    if low_x is not None:
        bounds.append(f"> {low_x}")
    if high is not None:
        bounds.append(f"≤ {high}")
    if high_x is not None:
        bounds.append(f"< {high_x}")
    if bounds:
        notes.append("Must be " + " and ".join(bounds) + ".")
    for key, words in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minItems", "at least {} item(s)"),
        ("maxItems", "at most {} item(s)"),
    ):
        if key in node:
            notes.append(words.format(node[key]).capitalize() + ".")
    if "pattern" in node:
        notes.append(f"Matches `{node['pattern']}`.")
    return notes


def schema_sections(schema: Schema, kind: str) -> list[Section]:
    """Every object section of `schema`, the top level first, then depth first."""
    walker = _Walker(schema, kind)
    walker.walk(schema, "")
    return walker.sections


def render_schema(schema: Schema, kind: str, heading: str = "###") -> str:
    """Markdown tables for a config kind's JSON Schema, one per object."""
    out = []
    for section in schema_sections(schema, kind):
        title = f"`{section.path}`" if section.path else f"Top level of a {kind} config"
        if section.variant:
            title += f" (`{section.variant}`)"
        out += [f"{heading} {title} {{ #{section.anchor} }}", ""]
        if section.description:
            out += [cell(section.description), ""]
        if section.rows:
            headers = ["key", "type", "default", "description"]
            out += [table(headers, section.rows), ""]
        else:
            out += ["No keys.", ""]
    return "\n".join(out).rstrip() + "\n"
