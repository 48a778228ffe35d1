"""A party's model section: its family and that family's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from splitrec.config.base import (
    ConfigModel,
    IntList,
    Limited,
    StrictBool,
    StrictInt,
    StrictStr,
    config_path,
    from_file,
    nested,
    problem,
    written_keys,
)
from splitrec.config.families import (
    AGGREGATIONS,
    DEFAULT_FAMILY,
    FAMILY_RULES,
    aggregation_problem,
    family_problem,
    key_families,
    tasks_problem,
)
from splitrec.config.limits import (
    PARTY_LIMITS,
)


class AggregationSection(ConfigModel):
    """How the fuse combines the base outputs, with secure aggregation."""

    method: StrictStr = Field(
        description="sum or average: the element-wise combination of the base outputs."
    )
    secure: StrictBool = Field(
        False,
        description="Feature parties send their outputs masked, so that the label "
        "party recovers only their sum.",
    )

    @model_validator(mode="before")
    @classmethod
    def _method(cls, data: Any) -> Any:
        if isinstance(data, dict) and "method" not in data:
            raise problem("method", "missing; use sum or average")
        return data


class ModelConfig(ConfigModel):
    """A party's model: its family (see ``splitrec.config.families``) and that
    family's settings; ``fuse_units``, ``fuse`` and ``aggregation`` (how the
    fuse combines the base outputs) only at the label party.

    ``custom`` models name their builders as ``module:function`` (``base``,
    ``fuse``), imported from the folder ``code`` (relative to the config file),
    and declare their base's output width."""

    embedding_dim: Limited(int, PARTY_LIMITS["embedding_dim"]) = Field(
        8, description="The width of every embedding of the party's features."
    )
    deep_units: IntList(PARTY_LIMITS["units"]) = Field(
        (256, 32),
        description="The units of the base's dense layers; the last is its output "
        "width.",
    )
    fuse_units: IntList(PARTY_LIMITS["units"]) = Field(
        (),
        description="Label party: the units of the fuse's dense layers (default "
        "256, 256, 32).",
    )
    family: StrictStr = Field(
        DEFAULT_FAMILY,
        description="The model family: "
        + ", ".join(sorted(FAMILY_RULES))
        + ". Every party of a job uses one its label party's fuse can take.",
        json_schema_extra={"enum": sorted(FAMILY_RULES)},
    )
    base: StrictStr = Field(
        "",
        description="custom: the base builder as 'module:function', looked up in "
        "'code'.",
    )
    fuse: StrictStr = Field(
        "",
        description="custom, label party: the fuse builder as 'module:function', "
        "looked up in 'code'.",
    )
    output_width: StrictInt = Field(
        0,
        description="custom: the width of the base's output per row.",
        json_schema_extra={"minimum": 1, "maximum": PARTY_LIMITS["units"].high},
    )
    code: Path | None = Field(
        None,
        description="custom: the folder the builders' modules are imported from, "
        "relative to the config file's folder (default: that folder).",
    )
    aggregation: Annotated[
        StrictStr,
        BeforeValidator(
            lambda v: v,
            json_schema_input_type=Literal[AGGREGATIONS] | AggregationSection,
        ),
    ] = Field(
        "concat",
        description="Label party: how the fuse combines the base outputs: concat "
        "(side by side), sum or average (element-wise, equal widths), or a "
        "mapping {method, secure} for secure aggregation.",
    )
    secure_aggregation: SkipJsonSchema[StrictBool] = Field(
        False,
        description="Feature parties send their outputs masked, so that the label "
        "party recovers only their sum.",
    )
    attention_heads: Limited(int, PARTY_LIMITS["attention_heads"]) = Field(
        2, description="bst: heads of self-attention; they divide embedding_dim."
    )
    transformer_blocks: Limited(int, PARTY_LIMITS["transformer_blocks"]) = Field(
        1, description="bst: transformer blocks."
    )
    experts: Limited(int, PARTY_LIMITS["experts"]) = Field(
        4, description="mmoe, label party: the experts the tasks share."
    )
    expert_units: IntList(PARTY_LIMITS["units"]) = Field(
        (64, 32), description="mmoe, label party: the units of each expert's layers."
    )
    tower_units: IntList(PARTY_LIMITS["units"]) = Field(
        (16,), description="mmoe, label party: the units of each task's tower."
    )
    tasks: SkipJsonSchema[StrictInt] = Field(
        0,
        description="How many labels the fuse predicts (the party's labels); 0 at "
        "a feature party.",
    )

    _derived: ClassVar[frozenset[str]] = frozenset({"tasks", "secure_aggregation"})
    file_sections: ClassVar[dict[str, type[ConfigModel]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _family_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        family, tasks = data.get("family", DEFAULT_FAMILY), data.get("tasks", 0)
        if not isinstance(family, str) or not isinstance(tasks, int):
            return data
        found = family_problem(family) or tasks_problem(family, tasks)
        if found is not None:
            raise problem("family", found)
        rules = FAMILY_RULES[family]
        allowed = rules.base_keys + (rules.fuse_keys if tasks else ())
        written = [k for k in written_keys(data, cls, info) if k not in cls._derived]
        # Built in Python, settings another family (or the fuse) would read are
        # kept, unused, as they always were; a file may not write them.
        for key in written if from_file(info) else ():
            if key in allowed:
                continue
            owners = key_families(key)
            if key in rules.fuse_keys:
                found = "is a setting of the fuse, which only the label party has"
            elif owners:
                found = f"belongs to model family {' / '.join(owners)}, not {family}"
            else:
                continue  # refused as an unknown key
            raise problem(key, f"{found}; remove it")
        data = dict(data)
        if "fuse_units" in allowed and "fuse_units" not in written:
            data["fuse_units"] = (256, 256, 32)
        if "code" in allowed and data.get("code") is None:
            data["code"] = "."
        for key in ("base", "fuse"):
            if key in allowed:
                data[key] = _builder(data, key)
        if "output_width" in allowed and "output_width" not in written:
            raise problem(
                "output_width", "missing; add the width of the base's output per row"
            )
        if "output_width" in allowed:
            found = PARTY_LIMITS["units"].problem(data["output_width"])
            if found is not None:
                raise problem("output_width", found)
        if "aggregation" in allowed:
            data.update(_aggregation(data, family, info))
        return data

    @field_validator("code", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return config_path(value, info)

    @model_validator(mode="after")
    def _heads(self) -> ModelConfig:
        if self.family == "bst" and self.embedding_dim % self.attention_heads:
            raise problem(
                "attention_heads",
                f"{self.attention_heads} heads do not divide embedding_dim "
                f"{self.embedding_dim}; each head takes an equal share of the "
                "embedding",
            )
        return self


def _builder(data: dict, key: str) -> Any:
    """A ``module:function`` reference to a model builder."""
    if key not in data:
        raise problem(key, "missing; add it as a string")
    value = data[key]
    if not isinstance(value, str):
        return value
    module, _, function = value.partition(":")
    parts = module.split(".") + [function]
    if not all(part.isidentifier() for part in parts):
        raise problem(
            key,
            f"{value!r} is not 'module:function' (for example "
            "'cross_network:build_base'); the module is looked up in 'code'",
        )
    return value


def _aggregation(data: dict, family: str, info: ValidationInfo) -> dict[str, Any]:
    """``aggregation``: a method (``concat``, ``sum``, ``average``), or
    ``{method: ..., secure: true|false}``; returns the fields they set."""
    value = data.get("aggregation", "concat")
    secure, key = bool(data.get("secure_aggregation", False)), "aggregation"
    if isinstance(value, dict):
        section = nested(AggregationSection, value, "aggregation", info)
        value, secure, key = section.method, section.secure, "aggregation.method"
    if not isinstance(value, str):
        return {}
    found = aggregation_problem(family, value)
    if found is not None:
        raise problem(key, found)
    if secure and value == "concat":
        raise problem(
            "aggregation.secure" if key != "aggregation" else "secure_aggregation",
            "secure aggregation lets the label party recover only the sum of the "
            "feature parties' outputs, so it cannot take them side by side "
            "(concat); use method sum or average",
        )
    return {"aggregation": value, "secure_aggregation": secure}
