"""Typed reading of YAML config mappings with errors that name the file and key."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from splitrec.common.errors import ConfigError
from splitrec.config.limits import Limit

T = TypeVar("T")

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    dict: "a mapping",
    list: "a list",
}


def _type_name(kind: type) -> str:
    return _TYPE_NAMES.get(kind, kind.__name__)


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


class ConfigReader:
    """Reads keys of one mapping; ``finish`` refuses keys nobody asked for.

    Every key asked about, written or not, is one this section allows: an
    unknown key's message lists them."""

    def __init__(self, data: Mapping[str, Any], source: Path, prefix: str = "") -> None:
        self._data = data
        self._source = source
        self._prefix = prefix
        self._seen: set[str] = set()
        self._allowed: set[str] = set()

    @property
    def source(self) -> Path:
        return self._source

    def where(self, key: str) -> str:
        """``file: key.path`` for messages about one key."""
        return f"{self._source}: key '{self._prefix}{key}'"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {message}")

    def has(self, key: str) -> bool:
        self._allowed.add(key)
        return key in self._data

    def written(self) -> list[str]:
        """The keys this section holds, as written."""
        return [str(key) for key in self._data]

    def require(self, key: str, kind: type[T]) -> T:
        self._allowed.add(key)
        if key not in self._data:
            raise self.error(key, f"missing; add it as {_type_name(kind)}")
        return self._typed(key, kind)

    def optional(self, key: str, kind: type[T], default: T) -> T:
        self._allowed.add(key)
        if key not in self._data or self._data[key] is None:
            self._seen.add(key)
            return default
        return self._typed(key, kind)

    def optional_raw(self, key: str) -> Any:
        """The value of ``key`` as written (None when absent), not yet marked
        read: for keys that take more than one form."""
        self._allowed.add(key)
        return self._data.get(key)

    def string_list(
        self, key: str, default: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        """A list of scalars, each turned into its string form."""
        self._allowed.add(key)
        if key not in self._data and default is not None:
            return default
        raw = self.require(key, list)
        for index, item in enumerate(raw):
            if isinstance(item, (dict, list)) or item is None:
                raise self.error(f"{key}[{index}]", "must be a plain value")
            if isinstance(item, bool):
                raise self.error(
                    f"{key}[{index}]",
                    f"YAML read this value as {item}; quote it (e.g. 'yes') to keep "
                    "it as text",
                )
        return tuple(str(item) for item in raw)

    def number(self, key: str, kind: type[T], default: T, limit: Limit) -> T:
        """An optional number, refused outside ``limit`` with the key and value."""
        value = self.optional(key, kind, default)
        problem = limit.problem(value)
        if problem is not None:
            raise self.error(key, problem)
        return value

    def int_list(
        self, key: str, default: tuple[int, ...] | None, limit: Limit
    ) -> tuple[int, ...]:
        self._allowed.add(key)
        if key not in self._data and default is not None:
            return default
        raw = self.require(key, list)
        if not raw:
            raise self.error(key, "must list at least one number")
        for index, item in enumerate(raw):
            problem = limit.problem(item)
            if problem is not None:
                raise self.error(f"{key}[{index}]", problem)
        return tuple(raw)

    def section(self, key: str) -> ConfigReader:
        value = self.require(key, dict)
        return ConfigReader(value, self._source, f"{self._prefix}{key}.")

    def sections(self, key: str) -> list[ConfigReader]:
        self._allowed.add(key)
        items = self.require(key, list)
        readers = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", "must be a mapping")
            readers.append(
                ConfigReader(item, self._source, f"{self._prefix}{key}[{index}].")
            )
        return readers

    def finish(self) -> None:
        """Refuses the first key written here that nothing read, listing the
        keys allowed here (and the nearest one, when it looks like a typo)."""
        unknown = sorted(set(map(str, self._data)) - self._seen)
        if unknown:
            allowed = sorted(self._allowed | self._seen)
            near = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise self.error(
                unknown[0],
                f"unknown key; {hint}the keys allowed here are: "
                + (", ".join(allowed) or "none"),
            )

    def _typed(self, key: str, kind: type[T]) -> T:
        self._seen.add(key)
        value = self._data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise self.error(key, f"must be a finite number, got {value}") from None
        if kind is float and isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value}")
        wrong_bool = isinstance(value, bool) and kind is not bool
        if wrong_bool or not isinstance(value, kind):
            wanted = _type_name(kind)
            raise self.error(key, f"must be {wanted}, got {value!r}")
        return value
