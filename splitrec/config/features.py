"""A party's features: which column each model input is built from, and how."""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    ValidationInfo,
    model_validator,
)

from splitrec.config.base import (
    ConfigModel,
    Limited,
    StrictBool,
    StrictInt,
    StrictStr,
    StringList,
    problem,
    written_keys,
)
from splitrec.config.limits import (
    PARTY_LIMITS,
)

FEATURE_KINDS = (
    "hashed",
    "vocabulary",
    "from_data",
    "multi_hot",
    "sequence",
    "numeric",
)
NOT_SHAREABLE = ("multi_hot", "sequence", "numeric")
# The keys of each feature type, besides name, column and type.
_FEATURE_KEYS = {
    "hashed": ("bins",),
    "vocabulary": ("vocabulary",),
    "from_data": (),
    "multi_hot": ("vocabulary", "separator"),
    "sequence": ("max_length", "shares", "padding", "separator", "bins", "vocabulary"),
    "numeric": ("fill", "indicator", "scale"),
}
NUMERIC_SCALES = ("standard", "minmax", "none")


class FeatureConfig(ConfigModel):
    """One model input built from one column of the party's file."""

    name: StrictStr = Field(
        description="The feature's name: the model input it becomes."
    )
    column: StrictStr = Field(
        "",
        description="The column of the data file it is built from (default: the "
        "feature's name).",
    )
    kind: StrictStr = Field(
        alias="type",
        description="How the column is encoded: hashed (into 'bins'), vocabulary "
        "(a fixed list), from_data (the distinct values of the training rows), "
        "multi_hot (several vocabulary values per cell), sequence (the last "
        "'max_length' tokens) or numeric (a number).",
        json_schema_extra={"enum": list(FEATURE_KINDS)},
    )
    bins: StrictInt = Field(
        0,
        description="hashed, sequence: the number of hash bins (an embedding row "
        "each).",
        json_schema_extra={"minimum": 1, "maximum": PARTY_LIMITS["bins"].high},
    )
    vocabulary: StringList = Field(
        (),
        description="vocabulary, multi_hot, sequence: the known values, each read "
        "as text; others share one out-of-vocabulary slot.",
    )
    separator: StrictStr = Field(
        " ",
        description="multi_hot, sequence: what separates the values in one cell "
        "(default: a space).",
    )
    max_length: StrictInt = Field(
        0,
        description="sequence: how many of the last tokens (most recent last) "
        "the feature keeps.",
        json_schema_extra={"minimum": 1, "maximum": PARTY_LIMITS["max_length"].high},
    )
    shares: StrictStr = Field(
        "",
        description="sequence: the name of an index feature (hashed, vocabulary "
        "or from_data) whose embedding table the tokens use.",
    )
    padding: StrictStr = Field(
        "0", description="sequence: the token that stands for no token."
    )
    fill: Limited(float, PARTY_LIMITS["fill"]) = Field(
        0.0, description="numeric: the value a missing cell (empty, '?', NaN) takes."
    )
    indicator: StrictBool = Field(
        False,
        description="numeric: add a second input that is 1 where the value was "
        "missing.",
    )
    scale: StrictStr = Field(
        "standard",
        description="numeric: scaling by the party's training rows: standard "
        "(mean 0, deviation 1), minmax (into [0, 1]) or none.",
        json_schema_extra={"enum": list(NUMERIC_SCALES)},
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        name, kind = data.get("name"), data.get("type", data.get("kind"))
        if "name" not in data:
            raise problem("name", "missing; add it as a string")
        if kind is None:
            raise problem("type", "missing; add it as a string")
        if not isinstance(kind, str):
            return data
        if kind not in FEATURE_KINDS:
            raise problem(
                "type", f"unknown feature type {kind!r}; use one of {FEATURE_KINDS}"
            )
        written = written_keys(data, cls, info)
        for key in written:
            owners = sorted(k for k, keys in _FEATURE_KEYS.items() if key in keys)
            if owners and key not in _FEATURE_KEYS[kind]:
                raise problem(
                    key,
                    f"is a setting of {' / '.join(owners)} features, not {kind}; "
                    "remove it",
                )
        if kind == "hashed" and "bins" not in written:
            raise problem("bins", "a hashed feature needs 'bins', a positive integer")
        if kind == "sequence":
            if "max_length" not in written:
                raise problem(
                    "max_length",
                    "a sequence feature needs 'max_length', its last N tokens",
                )
            given = [k for k in ("shares", "bins", "vocabulary") if k in written]
            if len(given) != 1:
                raise problem(
                    "shares" if not given else given[-1],
                    "a sequence feature encodes its tokens one way: 'shares' (the "
                    "name of an index feature whose embedding table it uses), "
                    "'bins' (hashed) or "
                    f"'vocabulary'; found {given or 'none'}",
                )
            if given == ["bins"]:
                found = PARTY_LIMITS["bins"].problem(data["bins"])
                if found is not None:
                    raise problem("bins", found)
            if given == ["vocabulary"] and data["vocabulary"] in ([], ()):
                raise problem("vocabulary", "must not be empty")
        if not data.get("column") and isinstance(name, str):
            data = {**data, "column": name}
        return data

    @model_validator(mode="after")
    def _check(self) -> FeatureConfig:
        kind = self.kind
        if kind == "hashed" or (kind == "sequence" and self.bins):
            self._limit("bins", self.bins)
        if kind == "sequence":
            self._limit("max_length", self.max_length)
        if kind == "numeric" and self.scale not in NUMERIC_SCALES:
            raise problem(
                "scale",
                f"unknown scaling {self.scale!r}; use one of {list(NUMERIC_SCALES)}",
            )
        if self.separator == "":
            raise problem("separator", "must not be empty; the default is a space")
        if kind in ("vocabulary", "multi_hot") and not self.vocabulary:
            raise problem(
                "vocabulary", f"a {kind} feature needs a non-empty 'vocabulary' list"
            )
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise problem("vocabulary", "holds the same value twice")
        return self

    @staticmethod
    def _limit(key: str, value: int) -> None:
        found = PARTY_LIMITS[key].problem(value)
        if found is not None:
            raise problem(key, found)
