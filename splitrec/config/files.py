"""Config files: one per party (its data, features, model, peers) and one per job.

Each config is a frozen pydantic model, loaded from its YAML file
(``load_party_config``, ``load_job_config``) or built in Python
(``PartyConfig(...)``, ``JobConfig.model_validate(mapping)``); either way it is
validated alike, and an error is a ``ConfigError`` that names the file (when
there is one), the key path and what is allowed. Relative paths are taken from
the config file's folder (in Python: the current folder, or the ``base`` of
the validation context).
"""

from __future__ import annotations

from enum import Enum
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

from splitrec.common.compression import METHODS as COMPRESSION_METHODS
from splitrec.common.errors import ConfigError
from splitrec.common.metrics import Task
from splitrec.common.names import name_problem, run_name_problem
from splitrec.config.base import (
    ConfigModel,
    IntList,
    Limited,
    Number,
    StrictBool,
    StrictInt,
    StrictStr,
    StringList,
    base_folder,
    from_file,
    join_key,
    nested,
    problem,
    refuse_keys,
    resolve,
    source_of,
    unknown_key,
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
    CALL_PORT,
    LISTEN_PORT,
    PARTY_LIMITS,
    address_problem,
    job_limit_problems,
)
from splitrec.config.privacy import DEFENSES, DP_RELEASES, PrivacySettings
from splitrec.config.reader import load_yaml_mapping
from splitrec.config.serving import ServingConfig, ServingSection, read_serving
from splitrec.config.tls import INSECURE, TlsConfig, tls_missing

FEATURE_KINDS = (
    "hashed",
    "vocabulary",
    "from_data",
    "multi_hot",
    "sequence",
    "numeric",
)
_NOT_SHAREABLE = ("multi_hot", "sequence", "numeric")
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
OPTIMIZERS = ("adam", "sgd", "adagrad")
PREDICT_SPLITS = ("none", "validation", "train", "all")


class PartyRole(Enum):
    FEATURE = "feature"
    LABEL = "label"


def _written(data: dict, cls: type[ConfigModel], info: ValidationInfo) -> list[str]:
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


def _run_name(value: str) -> str:
    """A job or party name, part of file paths (``splitrec.common.names``)."""
    found = run_name_problem(value, None)
    if found is not None:
        raise problem("", found)
    return value


def _path(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, (str, Path)):
        return resolve(base_folder(info), value)
    return value


# --- party config: features ---------------------------------------------------


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
        written = _written(data, cls, info)
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


class DataConfig(ConfigModel):
    """The party's data file: one row per ID, the columns it holds."""

    path: Path = Field(
        description="The party's CSV file, relative to the config file's folder."
    )
    id_column: StrictStr = Field(
        "ID", description="The column of row IDs the parties align on."
    )
    columns: StringList = Field(
        (),
        description="The file's columns, when the file has no header row (default: "
        "its header).",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return _path(value, info)

    @model_validator(mode="after")
    def _id_listed(self) -> DataConfig:
        if self.columns and self.id_column not in self.columns:
            raise problem("id_column", f"{self.id_column!r} is not in 'columns'")
        return self


# --- party config: labels, model, peers ----------------------------------------


class LabelConfig(ConfigModel):
    """label = 1 when the column's value is greater than ``positive_above`` (a
    number), or when it ``equals`` a given text (exactly one of the two).

    A job of several tasks names each label (``name``, which its metrics and
    score column carry) and weighs its loss (``weight``). ``key`` is where the
    party's config states it (``label``, or ``labels[i]``)."""

    column: StrictStr = Field(description="The column the label is computed from.")
    positive_above: Limited(float, PARTY_LIMITS["positive_above"]) | None = Field(
        None,
        description="The label is 1 where the column's value is greater than this "
        "number. Give this or 'equals'.",
    )
    equals: StrictStr | None = Field(
        None,
        description="The label is 1 where the column's value is this text. Give "
        "this or 'positive_above'.",
    )
    name: StrictStr = Field(
        "label",
        description="In a 'labels' list: the task's name, which its metrics and "
        "score column carry.",
    )
    weight: Limited(float, PARTY_LIMITS["weight"]) = Field(
        1.0, description="In a 'labels' list: the weight of the task's loss."
    )
    key: SkipJsonSchema[StrictStr] = Field(
        "label", description="Where the config states the label (for messages)."
    )

    _derived: ClassVar[frozenset[str]] = frozenset({"key"})

    @model_validator(mode="before")
    @classmethod
    def _one_rule(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        rules = [
            key
            for key in ("positive_above", "equals")
            if key in data
            and (data[key] is not None or len(data) > 1)
            and not (data[key] is None and key == "equals")
        ]
        if len(rules) != 1:
            raise problem(
                rules[-1] if rules else "positive_above",
                "give the label one rule: positive_above (label = value > a number) "
                f"or equals (label = value is a given text); found {rules or 'none'}",
            )
        if "column" not in data:
            raise problem("column", "missing; add it as a string")
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _run_name(value)

    @property
    def rule(self) -> str:
        """The rule as people write it: ``Rating > 3``, ``income = >50K``."""
        if self.equals is not None:
            return f"{self.column} = {self.equals}"
        return f"{self.column} > {self.positive_above:g}"

    @property
    def rule_key(self) -> str:
        return "equals" if self.equals is not None else "positive_above"

    @classmethod
    def file_keys_in(cls, listed: bool) -> list[str]:
        """A label's keys: a single ``label`` has no name and weight."""
        keys = cls.file_keys()
        return keys if listed else [k for k in keys if k not in ("name", "weight")]


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
        written = [k for k in _written(data, cls, info) if k not in cls._derived]
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
        return _path(value, info)

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


class PeerConfig(ConfigModel):
    """A party this one talks to; ``identity`` is the name in its certificate."""

    name: StrictStr = Field(description="The peer party's name.")
    address: StrictStr = Field(
        description="Where the peer listens: host:port (or another gRPC target)."
    )
    identity: StrictStr = Field(
        "",
        description="The name in the peer's certificate (default: its name).",
    )

    @model_validator(mode="before")
    @classmethod
    def _identity(cls, data: Any) -> Any:
        named = isinstance(data, dict) and isinstance(data.get("name"), str)
        if named and not data.get("identity"):
            return {**data, "identity": data["name"]}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _run_name(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        found = address_problem(value, CALL_PORT)
        if found is not None:
            raise problem("", found)
        return value

    @property
    def expected_identity(self) -> str:
        return self.identity or self.name


class JobPartyConfig(PeerConfig):
    """A party of the job: where the coordinator reaches it."""

    name: StrictStr = Field(description="The party's name, as its config states it.")
    address: StrictStr = Field(
        description="Where the party listens: host:port (or another gRPC target)."
    )
    identity: StrictStr = Field(
        "", description="The name in the party's certificate (default: its name)."
    )


# --- party config ---------------------------------------------------------------


def _labels(data: dict, info: ValidationInfo) -> tuple[Any, ...]:
    """``label`` (one task) or ``labels`` (a list of named tasks), each marked
    with the key it is written under; none at a feature party."""
    if "label" in data and "labels" in data:
        raise problem(
            "labels",
            "give either 'label' (one task) or 'labels' (a list of tasks), not both",
        )
    if "label" in data:
        label = data["label"]
        if from_file(info):
            refuse_keys_in(label, LabelConfig.file_keys_in(False), "label")
        if isinstance(label, dict):
            label = {**label, "key": "label"}
        return (nested(LabelConfig, label, "label", info),)
    labels = data.get("labels", ())
    if not isinstance(labels, (list, tuple)):
        return labels
    if "labels" in data and not labels:
        raise problem("labels", "list at least one label")
    found = []
    for index, label in enumerate(labels):
        key = f"labels[{index}]"
        if isinstance(label, dict):
            if from_file(info):
                refuse_keys_in(label, LabelConfig.file_keys_in(True), key)
            if "name" not in label:
                raise problem(f"{key}.name", "missing; add it as a string")
            label = {**label, "key": key}
        elif isinstance(label, LabelConfig):
            label = label.model_copy(update={"key": key})
        found.append(label)
    return tuple(found)


def refuse_keys_in(data: Any, allowed: list[str], key: str) -> None:
    """Refuses a key of ``data`` (the section at ``key``) not in ``allowed``."""
    if isinstance(data, dict):
        for written in data:
            if written not in allowed:
                raise problem(
                    join_key(key, str(written)), unknown_key(written, allowed)
                )


class PartyConfig(ConfigModel):
    """A party's own config: its data, features, model and peers; the only
    authority over what it reads and reveals."""

    party: StrictStr = Field(
        description="The party's name (part of file paths: a safe name)."
    )
    listen: StrictStr = Field(
        "127.0.0.1:0",
        description="The host:port the party serves on (port 0: any free one).",
    )
    data: DataConfig = Field(description="The party's data file.")
    features: tuple[FeatureConfig, ...] = Field(
        (),
        description="The model inputs built from the party's columns; only the "
        "label party may hold none (its labels alone).",
    )
    model: ModelConfig = Field(description="The party's model: family and settings.")
    peers: tuple[PeerConfig, ...] = Field(
        (), description="The parties this one talks to directly."
    )
    output_dir: Path = Field(
        Path("runs"),
        description="Where the party writes its jobs' checkpoints, exports and "
        "logs, relative to the config file's folder.",
    )
    labels: tuple[LabelConfig, ...] = Field(
        (),
        description="The label party's labels, one per task, each named; or give "
        "one 'label'. A party with labels is the label party.",
    )
    tls: TlsConfig = Field(
        INSECURE,
        description="Mutual TLS: the CA, the party's certificate and key; or "
        "{insecure: true} for a local demo. Required in a file.",
    )
    coordinator_identity: StrictStr = Field(
        "coordinator",
        description="The name in the certificate of the coordinator allowed to "
        "drive the party's jobs.",
    )
    datasets: dict[str, Path] = Field(
        default_factory=dict,
        description="Further files of the data file's layout, by key, for scoring "
        "new rows with an exported model (a job names a key, never a path); "
        "relative to the config file's folder.",
    )
    serving: Annotated[
        ServingConfig | None,
        BeforeValidator(lambda v: v, json_schema_input_type=ServingSection | None),
    ] = Field(None, description="What the party serves online, if anything.")
    source: SkipJsonSchema[Path] = Field(
        Path("<memory>"), description="The config file (for messages)."
    )

    _derived: ClassVar[frozenset[str]] = frozenset({"source"})
    file_sections: ClassVar[dict[str, type[ConfigModel]]] = {
        "label": LabelConfig,
        "serving": ServingSection,
    }

    @classmethod
    def file_keys(cls) -> list[str]:
        return sorted([*super().file_keys(), "label"])

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if from_file(info):
            refuse_keys(data, cls)
            for key, section in (("model", ModelConfig), ("data", DataConfig)):
                refuse_keys(data.get(key), section, key)
            if isinstance(data.get("features"), list):
                for index, feature in enumerate(data["features"]):
                    refuse_keys(feature, FeatureConfig, f"features[{index}]")
            if "tls" not in data:
                raise tls_missing()
        data = dict(data)
        data.setdefault("output_dir", "runs")
        labels = _labels(data, info)
        data.pop("label", None)
        if labels:
            data["labels"] = labels
        if "features" not in data and not labels:
            raise problem("features", "missing; add it as a list")
        model = data.get("model")
        tasks = len(labels) if isinstance(labels, tuple) else 0
        if isinstance(model, dict):
            data["model"] = {**model, "tasks": tasks}
        elif isinstance(model, ModelConfig) and model.tasks != tasks:
            raise problem(
                "model.tasks",
                f"is {model.tasks}, but the party has {tasks} label(s); build the "
                "model with tasks equal to the number of labels",
            )
        if data.get("serving") is not None:
            peers = data.get("peers") or ()
            names = tuple(
                p.get("name") if isinstance(p, dict) else getattr(p, "name", "")
                for p in (peers if isinstance(peers, (list, tuple)) else ())
            )
            data["serving"] = read_serving(data["serving"], info, names, bool(tasks))
        if from_file(info):
            data["source"] = source_of(info, Path("<memory>"))
        return data

    @field_validator("party")
    @classmethod
    def _name(cls, value: str) -> str:
        return _run_name(value)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        found = address_problem(value, LISTEN_PORT)
        if found is not None:
            raise problem("", found)
        return value

    @field_validator("output_dir", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return _path(value, info)

    @field_validator("datasets", mode="before")
    @classmethod
    def _datasets(cls, value: Any, info: ValidationInfo) -> Any:
        """Keys are safe names, paths relative to the config file's folder."""
        if not isinstance(value, dict):
            return value
        found = {}
        for key, path in value.items():
            key_problem = name_problem(str(key))
            if key_problem is not None:
                raise problem(str(key), f"a dataset key {key_problem}")
            if not isinstance(path, (str, Path)):
                raise problem(str(key), f"must be a string, got {path!r}")
            found[key] = _path(path, info)
        return found

    @model_validator(mode="after")
    def _check(self) -> PartyConfig:
        if not self.features and self.role is not PartyRole.LABEL:
            raise problem(
                "features",
                "list at least one feature (only the label party may hold no "
                "features, its labels alone)",
            )
        names = [f.name for f in self.features]
        by_name = {f.name: f for f in self.features}
        for index, feature in enumerate(self.features):
            owner = by_name.get(feature.shares) if feature.shares else None
            if feature.shares and (owner is None or owner.kind in _NOT_SHAREABLE):
                raise problem(
                    f"features[{index}].shares",
                    f"{feature.shares!r} is not an index feature of this party "
                    "(hashed, vocabulary or from_data) whose embedding table the "
                    f"sequence could share; its features: {names}",
                )
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise problem("features", f"feature names used twice: {duplicated}")
        tasks = [label.name for label in self.labels]
        duplicated = sorted({n for n in tasks if tasks.count(n) > 1})
        if duplicated:
            raise problem("labels", f"task names used twice: {duplicated}")
        columns = {f.column for f in self.features}
        for label in self.labels:
            if label.column in columns:
                raise problem(
                    f"{label.key}.column",
                    f"{label.column!r} is a label; it must not be a feature column",
                )
        if self.data.id_column in columns:
            raise problem("data.id_column", "the row ID column must not be a feature")
        if any(p.name == self.party for p in self.peers):
            raise problem("peers", f"lists the party itself ({self.party!r})")
        return self

    @property
    def role(self) -> PartyRole:
        return PartyRole.LABEL if self.labels else PartyRole.FEATURE

    @property
    def tasks(self) -> tuple[Task, ...]:
        """What the party's labels make the job predict (none at a feature party)."""
        return tuple(Task(label.name, label.weight) for label in self.labels)

    def peer(self, name: str) -> PeerConfig | None:
        return next((p for p in self.peers if p.name == name), None)


def load_party_config(path: Path) -> PartyConfig:
    """Reads and validates a party's config file."""
    path = Path(path).resolve()
    return PartyConfig.from_file(load_yaml_mapping(path), path)


# --- job config: the file's sections --------------------------------------------


class OptimizerSection(ConfigModel):
    """The optimizer every party's model trains with."""

    name: StrictStr = Field(
        "adam",
        description="adam, sgd or adagrad.",
        json_schema_extra={"enum": list(OPTIMIZERS)},
    )
    learning_rate: Number = Field(1e-3, description="The learning rate, in (0, 10].")


class StrategySection(ConfigModel):
    """How the parties overlap their steps."""

    pipeline_size: StrictInt = Field(
        1,
        description="Batches in flight at once (1: one step after another; up to 64).",
    )
    warmup_steps: StrictInt = Field(
        100,
        description="Steps taken one at a time before the pipeline fills.",
    )


class InitFromSection(ConfigModel):
    """Warm start: an exported model version of another job."""

    job: StrictStr = Field(description="The job whose export the parties start from.")
    version: StrictStr = Field(description="That job's exported model version.")


class CompressionSection(ConfigModel):
    """How hidden tensors and gradients are compressed between parties."""

    method: StrictStr = Field(
        "none",
        description="The compression method.",
        json_schema_extra={"enum": list(COMPRESSION_METHODS)},
    )
    ratio: Number = Field(1.0, description="The share of values kept, in (0, 1].")


class CheckpointSection(ConfigModel):
    """When checkpoints are written and how many are kept."""

    every_steps: StrictInt = Field(
        0,
        description="A checkpoint every this many steps (0: at epoch ends only).",
    )
    keep: StrictInt = Field(3, description="Checkpoints kept (1 to 1000).")


class RecoverySection(ConfigModel):
    """How a job recovers from a party's failure."""

    max_attempts: StrictInt = Field(
        5, description="Recoveries from a checkpoint before the job fails."
    )
    timeout: Number = Field(
        300.0, description="Seconds to wait for a failed party to return."
    )


class EmbeddingDpSection(ConfigModel):
    """Embedding differential privacy: each row of a feature party's hidden
    tensor is clipped and noised before it is sent."""

    clip_norm: Number = Field(description="The L2 norm each row is clipped to (> 0).")
    noise_multiplier: Number = Field(
        description="The Gaussian noise's standard deviation, in clip norms."
    )
    delta: Number = Field(
        1e-5, description="The δ at which the spent ε is reported, in (0, 1)."
    )
    releases: StrictStr = Field(
        "training",
        description="What is noised: training (the training forwards only) or all "
        "(the evaluation and prediction passes too).",
        json_schema_extra={"enum": list(DP_RELEASES)},
    )


class LabelDpSection(ConfigModel):
    """Label differential privacy: the label party trains on labels passed
    through randomized response."""

    epsilon: Number = Field(description="The randomized response's ε (> 0).")


class GradientDefenseSection(ConfigModel):
    """Noise on the gradients the label party returns."""

    method: StrictStr = Field(
        description="none, max_norm, iso or directional.",
        json_schema_extra={"enum": list(DEFENSES)},
    )
    scale: Number = Field(1.0, description="The noise's scale (iso, directional).")


class PrivacySection(ConfigModel):
    """The job's privacy mechanisms; all off when left out."""

    embedding_dp: EmbeddingDpSection | None = Field(
        None, description="Embedding DP at the feature parties."
    )
    label_dp: LabelDpSection | None = Field(
        None, description="Label DP at the label party."
    )
    gradient_defense: GradientDefenseSection | None = Field(
        None, description="A defense of the gradients sent to the feature parties."
    )
    leakage_probe: StrictBool = Field(
        False,
        description="Record what an attacker in each party's place sees (an "
        "evaluation mode).",
    )
    nopeek: Number = Field(
        0.0,
        description="NoPeek's weight at feature parties: the distance correlation "
        "between inputs and hidden tensors they lower (0: off).",
    )
    task: StrictStr = Field(
        "",
        description="In a job of several tasks: the label name that label DP and "
        "the gradient defense protect.",
    )

    @field_validator("task")
    @classmethod
    def _task(cls, value: str) -> str:
        return _run_name(value) if value else value

    def settings(self, key: str = "") -> PrivacySettings:
        """The settings the parties read (``key``: where the section is)."""
        values: dict[str, Any] = {
            "leakage_probe": self.leakage_probe,
            "nopeek": self.nopeek,
            "task": self.task,
        }
        if self.embedding_dp is not None:
            dp = self.embedding_dp
            if dp.clip_norm <= 0:
                raise problem(
                    join_key(key, "embedding_dp.clip_norm"), "must be greater than 0"
                )
            if dp.releases not in DP_RELEASES:
                raise problem(
                    join_key(key, "embedding_dp.releases"),
                    f"{dp.releases!r}: use training (the training forwards only) "
                    "or all (the evaluation and prediction passes too)",
                )
            values.update(
                clip_norm=dp.clip_norm,
                noise_multiplier=dp.noise_multiplier,
                delta=dp.delta,
                dp_releases=dp.releases,
            )
        if self.label_dp is not None:
            if self.label_dp.epsilon <= 0:
                raise problem(
                    join_key(key, "label_dp.epsilon"), "must be greater than 0"
                )
            values["label_epsilon"] = self.label_dp.epsilon
        if self.gradient_defense is not None:
            values["gradient_defense"] = self.gradient_defense.method
            values["defense_scale"] = self.gradient_defense.scale
        return PrivacySettings(**values)


def _privacy(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, dict):
        return nested(PrivacySection, value, "", info).settings()
    return value


class JobFile(ConfigModel):
    """A job's config file: the coordinator's only input. It holds the shared
    training settings only; each party's config rules over its data and model."""

    job: StrictStr = Field(
        description="The job's name (part of file paths: a safe name)."
    )
    parties: tuple[JobPartyConfig, ...] = Field(
        description="Every party of the job (at least two), in the fuse model's order."
    )
    label_party: StrictStr = Field(description="The party that holds the labels.")
    epochs: StrictInt = Field(5, description="Epochs to train (1 to 100000).")
    batch_size: StrictInt = Field(
        128, description="Rows per training step (1 to 1000000)."
    )
    seed: StrictInt = Field(
        1234, description="The seed of every random choice of the job."
    )
    optimizer: OptimizerSection | None = Field(None, description="The optimizer.")
    validation_fraction: Number = Field(
        0.1,
        description="The share of aligned rows held out for validation, in (0, 0.99].",
    )
    steps_per_window: StrictInt = Field(
        0,
        description="Steps per metrics window within an epoch (0: one window per "
        "epoch).",
    )
    report_every: StrictInt = Field(50, description="Steps between progress lines.")
    strategy: StrategySection | None = Field(
        None, description="How the parties overlap their steps."
    )
    predict: StrictStr = Field(
        "validation",
        description="Which rows are scored at the end: none, validation, train or all.",
        json_schema_extra={"enum": list(PREDICT_SPLITS)},
    )
    export: StrictStr = Field(
        "auto",
        description="The model version each party exports its part under at the "
        "end: auto (epoch-<E>), none (no export) or a version name.",
    )
    init_from: InitFromSection | None = Field(
        None, description="Warm start from another job's exported model version."
    )
    runs_dir: StrictStr = Field(
        "runs",
        description="Where the coordinator writes the job's records, relative to "
        "the config file's folder.",
    )
    connect_timeout: Number = Field(
        30.0, description="Seconds to wait for every party to answer."
    )
    rpc_timeout: Number = Field(
        120.0, description="Seconds one call to a party may take."
    )
    align_timeout: Number = Field(
        1800.0, description="Seconds the ID alignment may take."
    )
    compression: CompressionSection | None = Field(
        None, description="Compression of the tensors between parties."
    )
    privacy: PrivacySection | None = Field(
        None, description="Privacy mechanisms; all off when left out."
    )
    checkpoint: CheckpointSection | None = Field(
        None, description="Checkpoint frequency and retention."
    )
    recovery: RecoverySection | None = Field(
        None, description="Recovery from a party's failure."
    )
    tls: TlsConfig = Field(
        description="Mutual TLS: the CA, the coordinator's certificate and key; or "
        "{insecure: true} for a local demo."
    )

    @model_validator(mode="before")
    @classmethod
    def _tls(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tls" not in data:
            raise tls_missing()
        return data

    @field_validator("job")
    @classmethod
    def _name(cls, value: str) -> str:
        return _run_name(value)

    def flat(self, info: ValidationInfo | None) -> dict[str, Any]:
        """The settings as ``JobConfig``'s fields."""
        optimizer = self.optimizer or OptimizerSection()
        strategy = self.strategy or StrategySection()
        compression = self.compression or CompressionSection()
        checkpoint = self.checkpoint or CheckpointSection()
        recovery = self.recovery or RecoverySection()
        return {
            "job": self.job,
            "parties": self.parties,
            "label_party": self.label_party,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "optimizer": optimizer.name,
            "learning_rate": optimizer.learning_rate,
            "validation_fraction": self.validation_fraction,
            "steps_per_window": self.steps_per_window,
            "report_every": self.report_every,
            "pipeline_size": strategy.pipeline_size,
            "pipeline_warmup_steps": strategy.warmup_steps,
            "predict": self.predict,
            "export": self.export,
            "init_job": self.init_from.job if self.init_from else "",
            "init_version": self.init_from.version if self.init_from else "",
            "runs_dir": resolve(base_folder(info), self.runs_dir),
            "connect_timeout": self.connect_timeout,
            "rpc_timeout": self.rpc_timeout,
            "align_timeout": self.align_timeout,
            "compression": compression.method,
            "compression_ratio": compression.ratio,
            "privacy": self.privacy.settings("privacy")
            if self.privacy
            else PrivacySettings(),
            "checkpoint_every": checkpoint.every_steps,
            "keep_checkpoints": checkpoint.keep,
            "max_recoveries": recovery.max_attempts,
            "recovery_timeout": recovery.timeout,
            "tls": self.tls,
            "source": source_of(info, Path("<memory>")),
        }


# --- job config -------------------------------------------------------------------


def _is_file_layout(data: dict) -> bool:
    """Whether ``data`` is written as a job file (sections), not as fields."""
    sections = ("strategy", "checkpoint", "recovery", "init_from")
    return any(key in data for key in sections) or any(
        isinstance(data.get(key), dict) for key in ("optimizer", "compression")
    )


class JobConfig(ConfigModel):
    """A job's settings as the coordinator uses them: those of its file
    (``JobFile``, whose sections become fields here) or built in Python."""

    job: StrictStr
    parties: tuple[JobPartyConfig, ...]
    label_party: StrictStr
    epochs: StrictInt = 5
    batch_size: StrictInt = 128
    seed: StrictInt = 1234
    optimizer: StrictStr = "adam"
    learning_rate: Number = 1e-3
    validation_fraction: Number = 0.1
    steps_per_window: StrictInt = 0
    report_every: StrictInt = 50
    pipeline_size: StrictInt = 1
    pipeline_warmup_steps: StrictInt = 100
    predict: StrictStr = "validation"
    # The model version each party exports its part under at the end of the
    # job: ``auto`` names it ``epoch-<E>``, ``none`` exports nothing.
    export: StrictStr = "auto"
    # Warm start: an exported model version of another job (``init_from``).
    init_job: StrictStr = ""
    init_version: StrictStr = ""
    # Scoring (``coordinator predict``): the parties' dataset key to score.
    dataset: StrictStr = ""
    runs_dir: Path = Path("runs")
    connect_timeout: Number = 30.0
    rpc_timeout: Number = 120.0
    align_timeout: Number = 1800.0
    compression: StrictStr = "none"
    compression_ratio: Number = 1.0
    privacy: Annotated[PrivacySettings, BeforeValidator(_privacy)] = PrivacySettings()
    checkpoint_every: StrictInt = 0
    keep_checkpoints: StrictInt = 3
    max_recoveries: StrictInt = 5
    recovery_timeout: Number = 300.0
    tls: TlsConfig = INSECURE
    source: Path = Path("<memory>")

    _derived: ClassVar[frozenset[str]] = frozenset({"source", "dataset"})

    @classmethod
    def file_keys(cls) -> list[str]:
        return JobFile.file_keys()

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and (from_file(info) or _is_file_layout(data)):
            return nested(JobFile, data, "", info).flat(info)
        if isinstance(data, dict) and "runs_dir" not in data:
            return {**data, "runs_dir": "runs"}
        return data

    @field_validator("runs_dir", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return _path(value, info)

    @model_validator(mode="after")
    def _check(self) -> JobConfig:
        found = job_problem(self)
        if found is not None:
            raise problem(*found)
        return self

    def party(self, name: str) -> JobPartyConfig | None:
        return next((p for p in self.parties if p.name == name), None)

    @property
    def scored(self) -> tuple[str, str, str] | None:
        """A scoring job's (job, version, dataset) it is named by; ``None``
        for a training job."""
        if not self.dataset:
            return None
        return (self.init_job, self.init_version, self.dataset)


def load_job_config(path: Path) -> JobConfig:
    """Reads and validates a job's config file (the coordinator's only input)."""
    path = Path(path).resolve()
    return JobConfig.from_file(load_yaml_mapping(path), path)


def job_problem(config: JobConfig) -> tuple[str, str] | None:
    """(key, problem) of the first value that must not be so however the
    config was built (file, Python or flags); None when all fit."""
    found = run_name_problem(config.job, config.scored)
    if found is not None:
        return "job", found
    names = [p.name for p in config.parties]
    for index, name in enumerate(names):
        found = name_problem(name)
        if found is not None:
            return f"parties[{index}].name", found
    if len(names) < 2:
        return "parties", "a split job needs at least two parties"
    if len(set(names)) != len(names):
        return "parties", f"a party is listed twice: {names}"
    if config.label_party not in names:
        return "label_party", f"{config.label_party!r} is not a party: {names}"
    for key, found in job_limit_problems(config):
        return key, found
    if config.compression not in COMPRESSION_METHODS:
        return "compression.method", f"use one of {COMPRESSION_METHODS}"
    for key, found in config.privacy.problems():
        return f"privacy.{key}", found
    if config.optimizer not in OPTIMIZERS:
        return "optimizer.name", f"use one of {sorted(OPTIMIZERS)}"
    if config.predict not in PREDICT_SPLITS:
        return "predict", f"use one of {PREDICT_SPLITS}"
    found = name_problem(config.export)
    if found is not None:
        return "export", f"auto, none or a model version: {found}"
    if config.init_job or config.init_version:
        for key in ("job", "version"):
            found = name_problem(getattr(config, f"init_{key}"))
            if found is not None:
                return f"init_from.{key}", found
        if config.init_job == config.job:
            return (
                "init_from.job",
                "a job cannot start from its own export; give the new job a name "
                "of its own",
            )
    return None


def validate_job_config(config: JobConfig) -> None:
    """Checks values that must hold however the config was built (file or flags)."""
    found = job_problem(config)
    if found is not None:
        key, message = found
        raise ConfigError(f"{config.source}: key '{key}': {message}")


def override_job(config: JobConfig, **overrides: object) -> JobConfig:
    """The config with command-line overrides applied (``None`` keeps a value)."""
    changed = config.model_copy(
        update={k: v for k, v in overrides.items() if v is not None}
    )
    validate_job_config(changed)
    return changed
