"""A party's config file: its data, features, labels, model, peers and serving.

Each config is a frozen pydantic model, loaded from its YAML file
(``load_party_config``) or built in Python (``PartyConfig(...)``); either way it
is validated alike, and an error is a ``ConfigError`` that names the file (when
there is one), the key path and what is allowed. Relative paths are taken from
the config file's folder (in Python: the current folder, or the ``base`` of the
validation context).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from splitrec.common.metrics import Task
from splitrec.common.names import name_problem
from splitrec.config.base import (
    ConfigModel,
    Limited,
    StrictStr,
    StringList,
    checked_address,
    checked_run_name,
    config_path,
    data_location,
    from_file,
    join_key,
    nested,
    problem,
    refuse_keys,
    source_of,
    unknown_key,
)
from splitrec.config.engine import LOCAL, EngineConfig
from splitrec.config.features import NOT_SHAREABLE, FeatureConfig
from splitrec.config.limits import (
    CALL_PORT,
    LISTEN_PORT,
    PARTY_LIMITS,
)
from splitrec.config.model import ModelConfig
from splitrec.config.reader import load_yaml_mapping
from splitrec.config.serving import ServingConfig, ServingSection, read_serving
from splitrec.config.tls import INSECURE, TlsConfig, tls_missing


class PartyRole(Enum):
    FEATURE = "feature"
    LABEL = "label"


class DataConfig(ConfigModel):
    """The party's data file: one row per ID, the columns it holds."""

    path: Path | str = Field(
        description="The party's table: a CSV file, a Parquet file or a folder of "
        "Parquet shards; a path relative to the config file's folder, or a URL "
        "(s3://, gs://, hdfs://, file://, or a scheme fsspec opens)."
    )
    id_column: StrictStr = Field(
        "ID", description="The column of row IDs the parties align on."
    )
    columns: StringList = Field(
        (),
        description="The file's columns, when the file has no header row (default: "
        "its header).",
    )
    user_column: StrictStr = Field(
        "",
        description="The column naming whom each row is about (a user ID): embedding "
        "DP accounted per user (privacy.embedding_dp.per_user) counts each user's "
        "rows by it.",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return data_location(value, info)

    @model_validator(mode="after")
    def _id_listed(self) -> DataConfig:
        if self.columns and self.id_column not in self.columns:
            raise problem("id_column", f"{self.id_column!r} is not in 'columns'")
        if self.columns and self.user_column and self.user_column not in self.columns:
            raise problem("user_column", f"{self.user_column!r} is not in 'columns'")
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
        return checked_run_name(value)

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
        return checked_run_name(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return checked_address(value, CALL_PORT)

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
    datasets: dict[str, Path | str] = Field(
        default_factory=dict,
        description="Further tables of the data table's columns, by key, for "
        "scoring new rows with an exported model (a job names a key, never a "
        "path); paths relative to the config file's folder, or URLs as in "
        "data.path.",
    )
    serving: Annotated[
        ServingConfig | None,
        BeforeValidator(lambda v: v, json_schema_input_type=ServingSection | None),
    ] = Field(None, description="What the party serves online, if anything.")
    engine: EngineConfig = Field(
        LOCAL,
        description="Where the party's per-row work (PSI, encoding) runs: a Ray "
        "cluster of its own, or a local instance for large tables.",
    )
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
        return checked_run_name(value)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return checked_address(value, LISTEN_PORT)

    @field_validator("output_dir", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return config_path(value, info)

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
            found[key] = data_location(path, info)
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
            if feature.shares and (owner is None or owner.kind in NOT_SHAREABLE):
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
