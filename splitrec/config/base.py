"""What every config model shares: strict, frozen validation whose errors become
one ``ConfigError`` naming the file, the key path and what is allowed.

Config models validate in one of two modes, told by the validation context:

- from a file (``from_file(...)``): relative paths resolve from the file's
  folder, keys the file may not write (values the reader derives, such as
  ``source``) are refused as unknown;
- built in Python (no context, or ``{"base": folder}``): relative paths
  resolve from the current folder (or ``base``).

Validators raise ``problem(key, message)``; ``config_error`` turns pydantic's
errors into the messages people read: ``<file>: key 'model.features[2].bins':
<what is wrong and what is allowed>``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from splitrec.common.errors import ConfigError
from splitrec.common.names import run_name_problem
from splitrec.config.limits import Limit, address_problem
from splitrec.config.reader import key_position

M = TypeVar("M", bound="ConfigModel")

# The kind of value a field takes, as a message names it.
_KINDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    dict: "a mapping",
    tuple: "a list",
    list: "a list",
    Path: "a string",
}
# pydantic's type errors, by the kind they expected.
_TYPE_ERRORS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true/false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "path_type": "a string",
}


def problem(key: str, message: str) -> PydanticCustomError:
    """An error about ``key`` (a path below the value being validated; "" for
    the value itself), raised from a validator."""
    return PydanticCustomError("config", "{message}", {"key": key, "message": message})


def join_key(*parts: object) -> str:
    """``model``, ``features``, 2, ``bins`` → ``model.features[2].bins``."""
    text = ""
    for part in parts:
        if part == "" or part is None:
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        elif str(part).startswith("["):
            text += str(part)
        else:
            text += f".{part}" if text else str(part)
    return text


class ConfigModel(BaseModel):
    """A frozen, strictly typed config section that refuses unknown keys.

    Fields may also be given by position, in their order (as the dataclasses
    these models replace allowed). ``_derived`` names fields the reader sets
    itself: a file may not write them (they are left out of the JSON Schema)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        validate_default=False,
        arbitrary_types_allowed=False,
    )

    _derived: ClassVar[frozenset[str]] = frozenset()
    # Keys whose file form another model describes (for messages about them).
    file_sections: ClassVar[dict[str, type[BaseModel]]] = {}

    def __init__(self, *args: Any, **values: Any) -> None:
        if args:
            names = list(type(self).model_fields)
            if len(args) > len(names):
                raise TypeError(
                    f"{type(self).__name__} takes at most {len(names)} values by "
                    f"position, got {len(args)}"
                )
            for name, value in zip(names, args, strict=False):
                if name in values:
                    raise TypeError(f"{type(self).__name__} got {name!r} twice")
                values[name] = value
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc, type(self), None) from None

    # Validation within a parent never calls ``__init__``, so that it keeps the
    # validation context (pydantic reads this mark).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls: type[M], obj: Any, **options: Any) -> M:
        """``obj`` validated (``context={"base": folder}`` resolves relative
        paths from ``folder``); a ``ConfigError`` names the first problem."""
        try:
            return super().model_validate(obj, **options)
        except ValidationError as exc:
            context = options.get("context") or {}
            raise config_error(exc, cls, context.get("source")) from None

    @classmethod
    def file_keys(cls) -> list[str]:
        """The keys a file may write in this section."""
        return sorted(
            field.alias or name
            for name, field in cls.model_fields.items()
            if name not in cls._derived
        )

    @classmethod
    def from_file(cls: type[M], data: Mapping[str, Any], source: Path) -> M:
        """The section validated from a config file's mapping; relative paths
        resolve from the file's folder."""
        return cls.model_validate(data, context=file_context(source))


def file_context(source: Path) -> dict[str, Any]:
    return {"source": source, "base": source.parent}


def from_file(info: ValidationInfo | None) -> bool:
    """Whether the value is being read from a config file."""
    context = info.context if info is not None else None
    return bool(context) and context.get("source") is not None


def base_folder(info: ValidationInfo | None) -> Path:
    """The folder relative paths resolve from."""
    context = info.context if info is not None else None
    base = (context or {}).get("base")
    return Path(base) if base is not None else Path.cwd()


def source_of(info: ValidationInfo | None, default: Path) -> Path:
    context = info.context if info is not None else None
    source = (context or {}).get("source")
    return Path(source) if source is not None else default


def resolve(base: Path, value: str | Path) -> Path:
    """``value`` as a path: ``~`` expanded, relative ones under ``base``."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def refuse_keys(data: Any, cls: type[ConfigModel], key: str = "") -> None:
    """Refuses, in a file, a key of ``data`` that ``cls`` does not read there
    (one the reader derives, or a field's name where the file uses another)."""
    if not isinstance(data, Mapping):
        return
    allowed = cls.file_keys()
    for written in data:
        if written not in allowed:
            raise problem(join_key(key, str(written)), unknown_key(written, allowed))


def unknown_key(key: object, allowed: Sequence[str]) -> str:
    near = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"unknown key; {hint}the keys allowed here are: " + (
        ", ".join(sorted(allowed)) or "none"
    )


# --- field types --------------------------------------------------------------


def _within(limit: Limit) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        found = limit.problem(value)
        if found is not None:
            raise problem("", found)
        return value

    return check


FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]


def _float(value: Any) -> Any:
    """A YAML integer where a number is wanted, as a float (a bool stays a
    bool, and is refused)."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise problem("", f"must be a finite number, got {value}") from None
    return value


Number = Annotated[FiniteFloat, BeforeValidator(_float)]


def _bounds(limit: Limit) -> dict[str, Any]:
    """``limit`` in JSON Schema's words."""
    low = "exclusiveMinimum" if limit.above else "minimum"
    if limit.integer:
        return {low: int(limit.low), "maximum": int(limit.high)}
    return {low: limit.low, "maximum": limit.high}


def Limited(kind: type, limit: Limit) -> Any:  # noqa: N802 - a type factory
    """``kind`` (int or float) within ``limit``."""
    strict = StrictInt if kind is int else Number
    return Annotated[
        strict,
        AfterValidator(_within(limit)),
        WithJsonSchema(
            {"type": "integer" if kind is int else "number", **_bounds(limit)}
        ),
    ]


def _strings(value: Any) -> Any:
    """A list of plain values, each read as its text."""
    if not isinstance(value, (list, tuple)):
        return value
    for index, item in enumerate(value):
        if isinstance(item, (dict, list, tuple)) or item is None:
            raise problem(f"[{index}]", "must be a plain value")
        if isinstance(item, bool):
            raise problem(
                f"[{index}]",
                f"YAML read this value as {item}; quote it (e.g. 'yes') to keep it "
                "as text",
            )
    return tuple(str(item) for item in value)


StringList = Annotated[
    tuple[StrictStr, ...],
    BeforeValidator(_strings, json_schema_input_type=list[str | int | float]),
]


def _non_empty(value: tuple) -> tuple:
    if not value:
        raise problem("", "must list at least one number")
    return value


def IntList(limit: Limit) -> Any:  # noqa: N802 - a type factory
    """A non-empty list of integers within ``limit``."""
    item = Annotated[StrictInt, BeforeValidator(_within(limit))]
    return Annotated[tuple[item, ...], AfterValidator(_non_empty)]


__all__ = [
    "ConfigModel",
    "FiniteFloat",
    "IntList",
    "Limited",
    "Number",
    "StrictBool",
    "StrictInt",
    "StrictStr",
    "StringList",
    "config_error",
    "problem",
]


# --- pydantic errors as messages ----------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _field(cls: type[BaseModel], key: str) -> Any:
    for name, field in cls.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _walk(root: type[BaseModel], loc: Sequence[Any]) -> Any:
    """The (unwrapped) type found at ``loc`` below ``root``; None when lost."""
    current: Any = root
    for step in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(step, int):
            if origin in (tuple, list):
                current = typing.get_args(current)[0]
                continue
            return None
        if isinstance(current, type) and issubclass(current, BaseModel):
            override = getattr(current, "file_sections", {}).get(step)
            field = _field(current, step)
            if override is not None:
                current = override
            elif field is None:
                return None
            else:
                current = field.annotation
        elif origin is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    return _unwrap(current)


def _kind(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    origin = typing.get_origin(annotation) or annotation
    return _KINDS.get(origin, "a value")


def _message(error: Mapping[str, Any], root: type[BaseModel]) -> tuple[str, str]:
    """(key path, message) of one of pydantic's errors."""
    loc = [part for part in error["loc"] if not _is_tag(part)]
    kind = error["type"]
    value = error.get("input")
    if kind == "config":
        ctx = error["ctx"]
        return join_key(*loc, ctx["key"]), ctx["message"]
    key = join_key(*loc)
    if kind == "missing":
        return key, f"missing; add it as {_kind(_walk(root, loc))}"
    if kind == "extra_forbidden":
        owner = _walk(root, loc[:-1])
        allowed = (
            owner.file_keys()
            if isinstance(owner, type) and issubclass(owner, ConfigModel)
            else []
        )
        return key, unknown_key(loc[-1], allowed)
    if kind == "finite_number":
        return key, f"must be a finite number, got {value}"
    if kind in _TYPE_ERRORS:
        wanted = _TYPE_ERRORS[kind]
        if wanted == "a mapping" and loc and isinstance(loc[-1], int):
            return key, "must be a mapping"
        return key, f"must be {wanted}, got {value!r}"
    return key, f"{error['msg']}, got {value!r}"


_UNION_TYPES = ("int", "str", "float", "bool", "none")


def _union_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(key path, message) when the first error is one member of a union that
    refused a value (``pipeline_size: Auto``): every form it takes, as one
    message; None otherwise."""

    def member(error: Mapping[str, Any]) -> str | None:
        last = error["loc"][-1] if error["loc"] else None
        if not isinstance(last, str) or not (
            last in _UNION_TYPES or last.startswith("literal[")
        ):
            return None
        if error["type"] == "literal_error":
            return error["ctx"]["expected"]
        return _TYPE_ERRORS.get(error["type"])

    first = errors[0]
    same = [
        e
        for e in errors
        if e["loc"][:-1] == first["loc"][:-1] and e.get("input") is first.get("input")
    ]
    wanted = [member(e) for e in same]
    if len(wanted) < 2 or None in wanted:
        return None
    loc = [part for part in first["loc"][:-1] if not _is_tag(part)]
    return join_key(*loc), f"must be {' or '.join(wanted)}, got {first['input']!r}"


def first_problem(exc: ValidationError, root: type[BaseModel]) -> tuple[str, str]:
    """(key path, message) of the first of pydantic's errors."""
    errors = exc.errors(include_url=False)
    return _union_message(errors) or _message(errors[0], root)


def _is_tag(part: object) -> bool:
    """pydantic's names of validators in a location (``function-after[...]``)."""
    return isinstance(part, str) and ("[" in part and part.endswith("]"))


def config_error(
    exc: ValidationError,
    root: type[BaseModel],
    source: Path | None,
    rename: Callable[[str], str] = lambda key: key,
) -> ConfigError:
    """The first of pydantic's errors as a ``ConfigError``: ``<file>:<line>:
    <column>: key '<path>': <message>``, the place being where the file writes
    the key (or the nearest enclosing key it writes); ``rename`` maps a key
    path to the file's."""
    key, message = first_problem(exc, root)
    if source is None:
        where = ""
    elif key and (found := key_position(source, rename(key))) is not None:
        where = f"{source}:{found[0]}:{found[1]}: "
    else:
        where = f"{source}: "
    if not key:
        return ConfigError(f"{where}{message}")
    return ConfigError(f"{where}key '{rename(key)}': {message}")


def nested(cls: type[M], data: Any, key: str, info: ValidationInfo | None) -> M:
    """``data`` validated as ``cls`` from inside another model's validator; an
    error keeps its key path, below ``key``."""
    if isinstance(data, cls):
        return data
    try:
        return cls.__pydantic_validator__.validate_python(
            data, context=info.context if info else None
        )
    except ValidationError as exc:
        sub, message = first_problem(exc, cls)
        raise problem(join_key(key, sub), message) from None


def written_keys(data: dict, cls: type[ConfigModel], info: ValidationInfo) -> list[str]:
    """The keys ``data`` sets: in a file, those written; in Python, those given
    a value other than the field's default."""
    if from_file(info):
        return [str(key) for key in data]
    found = []
    for key, value in data.items():
        field = cls.model_fields.get(key)
        if field is None:
            field = next((f for f in cls.model_fields.values() if f.alias == key), None)
        if field is None or field.is_required() or value != field.default:
            found.append(str(key))
    return found


def checked_run_name(value: str) -> str:
    """A job or party name, part of file paths (``splitrec.common.names``)."""
    found = run_name_problem(value, None)
    if found is not None:
        raise problem("", found)
    return value


def config_path(value: Any, info: ValidationInfo) -> Any:
    """A path of a config, taken from the config file's folder (see ``base_folder``)."""
    if isinstance(value, (str, Path)):
        return resolve(base_folder(info), value)
    return value


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: object) -> bool:
    """Whether a data location is a URL (``scheme://...``) rather than a path."""
    return isinstance(location, str) and bool(_URL.match(location))


def data_location(value: Any, info: ValidationInfo) -> Any:
    """A data file's place: a URL as written, a path from the config file's folder."""
    return value if is_url(value) else config_path(value, info)


def checked_address(value: str, port: Limit) -> str:
    """A ``host:port`` whose port is within ``port``."""
    found = address_problem(value, port)
    if found is not None:
        raise problem("", found)
    return value
