"""Strict YAML loading of config files: a key given twice in one mapping, tags
and aliases are refused (``splitrec.config.party`` validates what it reads)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from splitrec.common.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an
    error (plain YAML keeps the last one, silently)."""


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    first_lines: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        try:
            seen = first_lines.get(key)
        except TypeError:  # an unhashable key; the constructor reports it
            continue
        if seen is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice in one mapping (first on line {seen}); "
                "keep one of them",
                key_node.start_mark,
            )
        first_lines[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping
)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """Reads a YAML file whose top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


_KEY_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def key_position(path: Path, key: str) -> tuple[int, int] | None:
    """Where ``key`` (``model.features[2].bins``) is written in the YAML file at
    ``path``: 1-based line and column of the key itself (of a list item: the
    item). A key the file does not write gives the place of the deepest part
    it does (``model`` for a missing ``model.family``); None when the file
    cannot be read again or the key's first part is not in it."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    mark = None
    for index, name in _KEY_PART.findall(key):
        if index and isinstance(node, yaml.SequenceNode):
            if int(index) >= len(node.value):
                break
            node = node.value[int(index)]
            mark = node.start_mark
        elif name and isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if k.value == name]
            if not found:
                break
            mark, node = found[0][0].start_mark, found[0][1]
        else:
            break
    return None if mark is None else (mark.line + 1, mark.column + 1)
