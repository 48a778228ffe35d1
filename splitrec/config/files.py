"""Config files: one per party (its data, features, model, peers) and one per job.

Each entry point builds one frozen, validated dataclass from its file; errors name
the file and the key. Relative paths are taken from the config file's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from splitrec.common.compression import METHODS as COMPRESSION_METHODS
from splitrec.common.errors import ConfigError
from splitrec.common.metrics import Task
from splitrec.common.names import name_problem, run_name_problem
from splitrec.config.limits import (
    CALL_PORT,
    LISTEN_PORT,
    PARTY_LIMITS,
    Limit,
    address_problem,
    job_limit_problems,
)
from splitrec.config.reader import ConfigReader, load_yaml_mapping
from splitrec.config.serving import ServingConfig, read_serving
from splitrec.models.registry import (
    DEFAULT_FAMILY,
    FAMILIES,
    aggregation_problem,
    family_problem,
    key_families,
    tasks_problem,
)
from splitrec.privacy.settings import DP_RELEASES, PrivacySettings
from splitrec.security.tls import INSECURE, TlsConfig, read_tls

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


class PartyRole(Enum):
    FEATURE = "feature"
    LABEL = "label"


@dataclass(frozen=True)
class FeatureConfig:
    """One model input built from one column of the party's file."""

    name: str
    column: str
    kind: str
    bins: int = 0
    vocabulary: tuple[str, ...] = ()
    separator: str = " "
    # A sequence: its last ``max_length`` tokens (most recent last; ``padding``
    # tokens are no tokens), encoded like the feature it ``shares`` its
    # embedding table with, or hashed into ``bins``, or by ``vocabulary``.
    max_length: int = 0
    shares: str = ""
    padding: str = "0"
    # A number: missing values (empty, "?", NaN) become ``fill``, and with
    # ``indicator`` a second column says which were missing; ``scale`` by
    # statistics of the party's own training rows.
    fill: float = 0.0
    indicator: bool = False
    scale: str = "standard"


@dataclass(frozen=True)
class DataConfig:
    path: Path
    id_column: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class LabelConfig:
    """label = 1 when the column's value is greater than ``positive_above`` (a
    number), or when it ``equals`` a given text (exactly one of the two).

    A job of several tasks names each label (``name``, which its metrics and
    score column carry) and weighs its loss (``weight``). ``key`` is where the
    party's config states it (``label``, or ``labels[i]``)."""

    column: str
    positive_above: float | None = None
    equals: str | None = None
    name: str = "label"
    weight: float = 1.0
    key: str = "label"

    @property
    def rule(self) -> str:
        """The rule as people write it: ``Rating > 3``, ``income = >50K``."""
        if self.equals is not None:
            return f"{self.column} = {self.equals}"
        return f"{self.column} > {self.positive_above:g}"

    @property
    def rule_key(self) -> str:
        return "equals" if self.equals is not None else "positive_above"


@dataclass(frozen=True)
class ModelConfig:
    """A party's model: its family (see ``splitrec.models.registry``) and that
    family's settings; ``fuse_units``, ``fuse`` and ``aggregation`` (how the
    fuse combines the base outputs) only at the label party.

    ``custom`` models name their builders as ``module:function`` (``base``,
    ``fuse``), imported from the folder ``code`` (relative to the config file),
    and declare their base's output width."""

    embedding_dim: int
    deep_units: tuple[int, ...]
    fuse_units: tuple[int, ...] = ()
    family: str = DEFAULT_FAMILY
    base: str = ""
    fuse: str = ""
    output_width: int = 0
    code: Path | None = None
    aggregation: str = "concat"
    # The label party's: feature parties send their outputs masked so that it
    # recovers only their sum (``aggregation: {method: sum, secure: true}``).
    secure_aggregation: bool = False
    # bst: heads of its self-attention (dividing embedding_dim) and blocks.
    attention_heads: int = 2
    transformer_blocks: int = 1
    # mmoe's fuse: shared experts (dense stacks of expert_units), a softmax gate
    # per task over them, and a tower of tower_units per task.
    experts: int = 4
    expert_units: tuple[int, ...] = (64, 32)
    tower_units: tuple[int, ...] = (16,)
    # How many labels the fuse predicts (the label party's labels); 0 at a
    # feature party.
    tasks: int = 0


@dataclass(frozen=True)
class PeerConfig:
    """A party this one talks to; ``identity`` is the name in its certificate."""

    name: str
    address: str
    identity: str = ""

    @property
    def expected_identity(self) -> str:
        return self.identity or self.name


@dataclass(frozen=True)
class PartyConfig:
    party: str
    listen: str
    data: DataConfig
    features: tuple[FeatureConfig, ...]
    model: ModelConfig
    peers: tuple[PeerConfig, ...]
    output_dir: Path
    labels: tuple[LabelConfig, ...] = ()
    tls: TlsConfig = INSECURE
    coordinator_identity: str = "coordinator"
    # Further files of the same layout, by key, for scoring new rows with an
    # exported model (a job names a key, never a path).
    datasets: dict[str, Path] = dataclasses.field(default_factory=dict)
    # What the party serves online (``splitrec.config.serving``), if anything.
    serving: ServingConfig | None = None
    source: Path = Path("<memory>")

    @property
    def role(self) -> PartyRole:
        return PartyRole.LABEL if self.labels else PartyRole.FEATURE

    @property
    def tasks(self) -> tuple[Task, ...]:
        """What the party's labels make the job predict (none at a feature party)."""
        return tuple(Task(label.name, label.weight) for label in self.labels)

    def peer(self, name: str) -> PeerConfig | None:
        return next((p for p in self.peers if p.name == name), None)


@dataclass(frozen=True)
class JobPartyConfig:
    name: str
    address: str
    identity: str = ""

    @property
    def expected_identity(self) -> str:
        return self.identity or self.name


@dataclass(frozen=True)
class JobConfig:
    job: str
    parties: tuple[JobPartyConfig, ...]
    label_party: str
    epochs: int = 5
    batch_size: int = 128
    seed: int = 1234
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    validation_fraction: float = 0.1
    steps_per_window: int = 0
    report_every: int = 50
    pipeline_size: int = 1
    pipeline_warmup_steps: int = 100
    predict: str = "validation"
    # The model version each party exports its part under at the end of the
    # job: ``auto`` names it ``epoch-<E>``, ``none`` exports nothing.
    export: str = "auto"
    # Warm start: an exported model version of another job (``init_from``).
    init_job: str = ""
    init_version: str = ""
    # Scoring (``coordinator predict``): the parties' dataset key to score.
    dataset: str = ""
    runs_dir: Path = Path("runs")
    connect_timeout: float = 30.0
    rpc_timeout: float = 120.0
    align_timeout: float = 1800.0
    compression: str = "none"
    compression_ratio: float = 1.0
    privacy: PrivacySettings = PrivacySettings()
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    max_recoveries: int = 5
    recovery_timeout: float = 300.0
    tls: TlsConfig = INSECURE
    source: Path = Path("<memory>")

    def party(self, name: str) -> JobPartyConfig | None:
        return next((p for p in self.parties if p.name == name), None)

    @property
    def scored(self) -> tuple[str, str, str] | None:
        """A scoring job's (job, version, dataset) it is named by; ``None``
        for a training job."""
        if not self.dataset:
            return None
        return (self.init_job, self.init_version, self.dataset)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _name(reader: ConfigReader, key: str, default: str | None = None) -> str:
    """A job or party name, part of file paths (``splitrec.common.names``)."""
    if default is None:
        value = reader.require(key, str)
    else:
        value = reader.optional(key, str, default)
    problem = run_name_problem(value, None)
    if problem is not None:
        raise reader.error(key, problem)
    return value


def _address(
    reader: ConfigReader, key: str, port: Limit, default: str | None = None
) -> str:
    """A ``host:port`` whose port lies within ``port``."""
    if default is None:
        value = reader.require(key, str)
    else:
        value = reader.optional(key, str, default)
    problem = address_problem(value, port)
    if problem is not None:
        raise reader.error(key, problem)
    return value


def _bins(reader: ConfigReader) -> int:
    if not reader.has("bins"):
        raise reader.error("bins", "a hashed feature needs 'bins', a positive integer")
    return reader.number("bins", int, 0, PARTY_LIMITS["bins"])


def _read_feature(reader: ConfigReader) -> FeatureConfig:
    name = reader.require("name", str)
    kind = reader.require("type", str)
    if kind not in FEATURE_KINDS:
        raise reader.error(
            "type", f"unknown feature type {kind!r}; use one of {FEATURE_KINDS}"
        )
    for key in reader.written():
        owners = sorted(k for k, keys in _FEATURE_KEYS.items() if key in keys)
        if owners and key not in _FEATURE_KEYS[kind]:
            raise reader.error(
                key,
                f"is a setting of {' / '.join(owners)} features, not {kind}; remove it",
            )
    feature = FeatureConfig(
        name=name,
        column=reader.optional("column", str, name),
        kind=kind,
        bins=_bins(reader) if kind == "hashed" else reader.optional("bins", int, 0),
        vocabulary=reader.string_list("vocabulary", ()),
        separator=reader.optional("separator", str, " "),
    )
    if kind == "sequence":
        feature = _read_sequence(reader, feature)
    if kind == "numeric":
        feature = _read_numeric(reader, feature)
    if feature.separator == "":
        raise reader.error("separator", "must not be empty; the default is a space")
    if kind in ("vocabulary", "multi_hot") and not feature.vocabulary:
        raise reader.error(
            "vocabulary", f"a {kind} feature needs a non-empty 'vocabulary' list"
        )
    if len(set(feature.vocabulary)) != len(feature.vocabulary):
        raise reader.error("vocabulary", "holds the same value twice")
    reader.finish()
    return feature


def _read_numeric(reader: ConfigReader, feature: FeatureConfig) -> FeatureConfig:
    """A numeric feature's own keys: its fill value, indicator and scaling."""
    scale = reader.optional("scale", str, "standard")
    if scale not in NUMERIC_SCALES:
        raise reader.error(
            "scale", f"unknown scaling {scale!r}; use one of {list(NUMERIC_SCALES)}"
        )
    return dataclasses.replace(
        feature,
        fill=reader.number("fill", float, 0.0, PARTY_LIMITS["fill"]),
        indicator=reader.optional("indicator", bool, False),
        scale=scale,
    )


def _read_sequence(reader: ConfigReader, feature: FeatureConfig) -> FeatureConfig:
    """A sequence feature's own keys: its length, padding and token encoding."""
    if not reader.has("max_length"):
        raise reader.error(
            "max_length", "a sequence feature needs 'max_length', its last N tokens"
        )
    sequence = dataclasses.replace(
        feature,
        max_length=reader.number("max_length", int, 1, PARTY_LIMITS["max_length"]),
        shares=reader.optional("shares", str, ""),
        padding=reader.optional("padding", str, "0"),
    )
    given = [k for k in ("shares", "bins", "vocabulary") if reader.has(k)]
    if len(given) != 1:
        raise reader.error(
            "shares" if not given else given[-1],
            "a sequence feature encodes its tokens one way: 'shares' (the name of "
            "an index feature whose embedding table it uses), 'bins' (hashed) or "
            f"'vocabulary'; found {given or 'none'}",
        )
    if given == ["bins"]:
        sequence = dataclasses.replace(sequence, bins=_bins(reader))
    if given == ["vocabulary"] and not sequence.vocabulary:
        raise reader.error("vocabulary", "must not be empty")
    return sequence


def _read_model(reader: ConfigReader, tasks: int, base: Path) -> ModelConfig:
    """The ``model`` section of a party that predicts ``tasks`` labels (0 at a
    feature party)."""
    family = reader.optional("family", str, DEFAULT_FAMILY)
    problem = family_problem(family) or tasks_problem(family, tasks)
    if problem is not None:
        raise reader.error("family", problem)
    declared = FAMILIES[family]
    allowed = declared.base_keys + (declared.fuse_keys if tasks else ())
    for key in reader.written():
        if key in allowed:
            continue
        owners = key_families(key)
        if key in declared.fuse_keys:
            problem = "is a setting of the fuse, which only the label party has"
        elif owners:
            problem = f"belongs to model family {' / '.join(owners)}, not {family}"
        else:
            continue  # reader.finish() names it as unknown
        raise reader.error(key, f"{problem}; remove it")
    model = ModelConfig(
        embedding_dim=reader.number(
            "embedding_dim", int, 8, PARTY_LIMITS["embedding_dim"]
        ),
        deep_units=reader.int_list("deep_units", (256, 32), PARTY_LIMITS["units"]),
        fuse_units=reader.int_list("fuse_units", (256, 256, 32), PARTY_LIMITS["units"])
        if "fuse_units" in allowed
        else (),
        family=family,
        base=_builder(reader, "base") if "base" in allowed else "",
        fuse=_builder(reader, "fuse") if "fuse" in allowed else "",
        output_width=_output_width(reader) if "output_width" in allowed else 0,
        code=_resolve(base, reader.optional("code", str, "."))
        if "code" in allowed
        else None,
        tasks=tasks,
    )
    if "aggregation" in allowed:
        method, secure = _aggregation(reader, family)
        model = dataclasses.replace(
            model, aggregation=method, secure_aggregation=secure
        )
    if "attention_heads" in allowed:
        model = _read_transformer(reader, model)
    if "experts" in allowed:
        model = dataclasses.replace(
            model,
            experts=reader.number("experts", int, 4, PARTY_LIMITS["experts"]),
            expert_units=reader.int_list(
                "expert_units", (64, 32), PARTY_LIMITS["units"]
            ),
            tower_units=reader.int_list("tower_units", (16,), PARTY_LIMITS["units"]),
        )
    reader.finish()
    return model


def _read_transformer(reader: ConfigReader, model: ModelConfig) -> ModelConfig:
    """BST's keys: attention heads (dividing embedding_dim) and blocks."""
    heads = reader.number("attention_heads", int, 2, PARTY_LIMITS["attention_heads"])
    if model.embedding_dim % heads:
        raise reader.error(
            "attention_heads",
            f"{heads} heads do not divide embedding_dim {model.embedding_dim}; "
            "each head takes an equal share of the embedding",
        )
    return dataclasses.replace(
        model,
        attention_heads=heads,
        transformer_blocks=reader.number(
            "transformer_blocks", int, 1, PARTY_LIMITS["transformer_blocks"]
        ),
    )


def _aggregation(reader: ConfigReader, family: str) -> tuple[str, bool]:
    """``aggregation``: a method (``concat``, ``sum``, ``average``), or
    ``{method: ..., secure: true|false}``; returns (method, secure)."""
    secure, key, section = False, "aggregation", reader
    if reader.has("aggregation") and isinstance(
        reader.optional_raw("aggregation"), dict
    ):
        section = reader.section("aggregation")
        key = "method"
        secure = section.optional("secure", bool, False)
        if not section.has("method"):
            raise section.error("method", "missing; use sum or average")
    value = section.optional(key, str, "concat")
    problem = aggregation_problem(family, value)
    if problem is not None:
        raise section.error(key, problem)
    if secure and value == "concat":
        raise section.error(
            "secure",
            "secure aggregation lets the label party recover only the sum of the "
            "feature parties' outputs, so it cannot take them side by side "
            "(concat); use method sum or average",
        )
    if section is not reader:
        section.finish()
    return value, secure


def _output_width(reader: ConfigReader) -> int:
    if not reader.has("output_width"):
        raise reader.error(
            "output_width", "missing; add the width of the base's output per row"
        )
    return reader.number("output_width", int, 1, PARTY_LIMITS["units"])


def _builder(reader: ConfigReader, key: str) -> str:
    """A ``module:function`` reference to a model builder."""
    value = reader.require(key, str)
    module, _, function = value.partition(":")
    parts = module.split(".") + [function]
    if not all(part.isidentifier() for part in parts):
        raise reader.error(
            key,
            f"{value!r} is not 'module:function' (for example "
            "'cross_network:build_base'); the module is looked up in 'code'",
        )
    return value


def _read_data(reader: ConfigReader, base: Path) -> DataConfig:
    data = DataConfig(
        path=_resolve(base, reader.require("path", str)),
        id_column=reader.optional("id_column", str, "ID"),
        columns=reader.string_list("columns", ()),
    )
    if data.columns and data.id_column not in data.columns:
        raise reader.error("id_column", f"{data.id_column!r} is not in 'columns'")
    reader.finish()
    return data


def _read_label(reader: ConfigReader, index: int | None = None) -> LabelConfig:
    """One label: its column and rule; the ``index``-th of a ``labels`` list
    also its name and weight."""
    rules = [key for key in ("positive_above", "equals") if reader.has(key)]
    if len(rules) != 1:
        raise reader.error(
            rules[-1] if rules else "positive_above",
            "give the label one rule: positive_above (label = value > a number) "
            f"or equals (label = value is a given text); found {rules or 'none'}",
        )
    label = LabelConfig(
        column=reader.require("column", str),
        positive_above=reader.number(
            "positive_above", float, 0.0, PARTY_LIMITS["positive_above"]
        )
        if rules == ["positive_above"]
        else None,
        equals=reader.require("equals", str) if rules == ["equals"] else None,
    )
    if index is not None:
        label = dataclasses.replace(
            label,
            name=_name(reader, "name"),
            weight=reader.number("weight", float, 1.0, PARTY_LIMITS["weight"]),
            key=f"labels[{index}]",
        )
    reader.finish()
    return label


def _read_labels(reader: ConfigReader) -> tuple[LabelConfig, ...]:
    """``label`` (one task) or ``labels`` (a list of named tasks); none at a
    feature party."""
    if reader.has("label") and reader.has("labels"):
        raise reader.error(
            "labels",
            "give either 'label' (one task) or 'labels' (a list of tasks), not both",
        )
    if reader.has("label"):
        return (_read_label(reader.section("label")),)
    if not reader.has("labels"):
        return ()
    labels = tuple(
        _read_label(r, index) for index, r in enumerate(reader.sections("labels"))
    )
    if not labels:
        raise reader.error("labels", "list at least one label")
    names = [label.name for label in labels]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise reader.error("labels", f"task names used twice: {duplicated}")
    return labels


def _read_peer(reader: ConfigReader) -> PeerConfig:
    name = _name(reader, "name")
    peer = PeerConfig(
        name=name,
        address=_address(reader, "address", CALL_PORT),
        identity=reader.optional("identity", str, name),
    )
    reader.finish()
    return peer


def load_party_config(path: Path) -> PartyConfig:
    """Reads and validates a party's config file."""
    path = Path(path).resolve()
    reader = ConfigReader(load_yaml_mapping(path), path)
    base = path.parent
    labels = _read_labels(reader)
    features = (
        tuple(_read_feature(r) for r in reader.sections("features"))
        if not labels or reader.has("features")
        else ()
    )
    config = PartyConfig(
        party=_name(reader, "party"),
        listen=_address(reader, "listen", LISTEN_PORT, "127.0.0.1:0"),
        data=_read_data(reader.section("data"), base),
        features=features,
        model=_read_model(reader.section("model"), len(labels), base),
        peers=tuple(_read_peer(r) for r in reader.sections("peers"))
        if reader.has("peers")
        else (),
        output_dir=_resolve(base, reader.optional("output_dir", str, "runs")),
        labels=labels,
        tls=read_tls(reader, base),
        coordinator_identity=reader.optional(
            "coordinator_identity", str, "coordinator"
        ),
        datasets=_read_datasets(reader, base),
        source=path,
    )
    if reader.has("serving"):
        peers = tuple(p.name for p in config.peers)
        serving = read_serving(reader.section("serving"), base, peers, bool(labels))
        config = dataclasses.replace(config, serving=serving)
    reader.finish()
    _check_party(config, reader)
    return config


def _read_datasets(reader: ConfigReader, base: Path) -> dict[str, Path]:
    """``datasets: {key: path}``: keys are safe names, paths relative to the
    config file's folder."""
    if not reader.has("datasets"):
        return {}
    section = reader.section("datasets")
    found = {}
    for key in section.written():
        problem = name_problem(key)
        if problem is not None:
            raise section.error(key, f"a dataset key {problem}")
        found[key] = _resolve(base, section.require(key, str))
    section.finish()
    return found


def _check_party(config: PartyConfig, reader: ConfigReader) -> None:
    if not config.features and config.role is not PartyRole.LABEL:
        raise reader.error(
            "features",
            "list at least one feature (only the label party may hold no "
            "features, its labels alone)",
        )
    names = [f.name for f in config.features]
    by_name = {f.name: f for f in config.features}
    for index, feature in enumerate(config.features):
        owner = by_name.get(feature.shares) if feature.shares else None
        if feature.shares and (owner is None or owner.kind in _NOT_SHAREABLE):
            raise reader.error(
                f"features[{index}].shares",
                f"{feature.shares!r} is not an index feature of this party (hashed, "
                "vocabulary or from_data) whose embedding table the sequence "
                f"could share; its features: {names}",
            )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise reader.error("features", f"feature names used twice: {duplicated}")
    columns = {f.column for f in config.features}
    for label in config.labels:
        if label.column in columns:
            raise reader.error(
                f"{label.key}.column",
                f"{label.column!r} is a label; it must not be a feature column",
            )
    if config.data.id_column in columns:
        raise reader.error("data.id_column", "the row ID column must not be a feature")
    if any(p.name == config.party for p in config.peers):
        raise reader.error("peers", f"lists the party itself ({config.party!r})")


def _read_job_party(reader: ConfigReader) -> JobPartyConfig:
    name = _name(reader, "name")
    party = JobPartyConfig(
        name=name,
        address=_address(reader, "address", CALL_PORT),
        identity=reader.optional("identity", str, name),
    )
    reader.finish()
    return party


def _read_privacy(job: ConfigReader) -> PrivacySettings:
    """The job's ``privacy`` section; every part of it is optional."""
    if not job.has("privacy"):
        return PrivacySettings()
    reader = job.section("privacy")
    values: dict[str, object] = {}
    if reader.has("embedding_dp"):
        dp = reader.section("embedding_dp")
        values["clip_norm"] = dp.require("clip_norm", float)
        values["noise_multiplier"] = dp.require("noise_multiplier", float)
        if dp.has("delta"):
            values["delta"] = dp.require("delta", float)
        values["dp_releases"] = dp.optional("releases", str, "training")
        dp.finish()
    if reader.has("label_dp"):
        label = reader.section("label_dp")
        values["label_epsilon"] = label.require("epsilon", float)
        label.finish()
    if reader.has("gradient_defense"):
        defense = reader.section("gradient_defense")
        values["gradient_defense"] = defense.require("method", str)
        values["defense_scale"] = defense.optional("scale", float, 1.0)
        defense.finish()
    values["leakage_probe"] = reader.optional("leakage_probe", bool, False)
    values["nopeek"] = reader.optional("nopeek", float, 0.0)
    if reader.has("task"):
        values["task"] = _name(reader, "task")
    reader.finish()
    settings = PrivacySettings(**values)
    if "clip_norm" in values and settings.clip_norm <= 0:
        raise reader.error("embedding_dp.clip_norm", "must be greater than 0")
    if "label_epsilon" in values and settings.label_epsilon <= 0:
        raise reader.error("label_dp.epsilon", "must be greater than 0")
    if settings.dp_releases not in DP_RELEASES:
        raise reader.error(
            "embedding_dp.releases",
            f"{settings.dp_releases!r}: use training (the training forwards "
            "only) or all (the evaluation and prediction passes too)",
        )
    return settings


def load_job_config(path: Path) -> JobConfig:
    """Reads and validates a job's config file (the coordinator's only input)."""
    path = Path(path).resolve()
    reader = ConfigReader(load_yaml_mapping(path), path)
    optimizer = reader.section("optimizer") if reader.has("optimizer") else None
    strategy = reader.section("strategy") if reader.has("strategy") else None
    checkpoint = reader.section("checkpoint") if reader.has("checkpoint") else None
    recovery = reader.section("recovery") if reader.has("recovery") else None
    compression = reader.section("compression") if reader.has("compression") else None
    init_from = reader.section("init_from") if reader.has("init_from") else None
    config = JobConfig(
        job=_name(reader, "job"),
        parties=tuple(_read_job_party(r) for r in reader.sections("parties")),
        label_party=reader.require("label_party", str),
        epochs=reader.optional("epochs", int, 5),
        batch_size=reader.optional("batch_size", int, 128),
        seed=reader.optional("seed", int, 1234),
        optimizer=optimizer.optional("name", str, "adam") if optimizer else "adam",
        learning_rate=optimizer.optional("learning_rate", float, 1e-3)
        if optimizer
        else 1e-3,
        validation_fraction=reader.optional("validation_fraction", float, 0.1),
        steps_per_window=reader.optional("steps_per_window", int, 0),
        report_every=reader.optional("report_every", int, 50),
        pipeline_size=strategy.optional("pipeline_size", int, 1) if strategy else 1,
        pipeline_warmup_steps=(
            strategy.optional("warmup_steps", int, 100) if strategy else 100
        ),
        predict=reader.optional("predict", str, "validation"),
        export=reader.optional("export", str, "auto"),
        init_job=init_from.require("job", str) if init_from else "",
        init_version=init_from.require("version", str) if init_from else "",
        runs_dir=_resolve(path.parent, reader.optional("runs_dir", str, "runs")),
        connect_timeout=reader.optional("connect_timeout", float, 30.0),
        rpc_timeout=reader.optional("rpc_timeout", float, 120.0),
        align_timeout=reader.optional("align_timeout", float, 1800.0),
        compression=compression.optional("method", str, "none")
        if compression
        else "none",
        compression_ratio=compression.optional("ratio", float, 1.0)
        if compression
        else 1.0,
        privacy=_read_privacy(reader),
        checkpoint_every=checkpoint.optional("every_steps", int, 0)
        if checkpoint
        else 0,
        keep_checkpoints=checkpoint.optional("keep", int, 3) if checkpoint else 3,
        max_recoveries=recovery.optional("max_attempts", int, 5) if recovery else 5,
        recovery_timeout=(
            recovery.optional("timeout", float, 300.0) if recovery else 300.0
        ),
        tls=read_tls(reader, path.parent),
        source=path,
    )
    sections = (optimizer, strategy, checkpoint, recovery, compression, init_from)
    for section in sections:
        if section:
            section.finish()
    reader.finish()
    validate_job_config(config)
    return config


def validate_job_config(config: JobConfig) -> None:
    """Checks values that must hold however the config was built (file or flags)."""
    where = f"{config.source}: key"
    problem = run_name_problem(config.job, config.scored)
    if problem is not None:
        raise ConfigError(f"{where} 'job': {problem}")
    names = [p.name for p in config.parties]
    for index, name in enumerate(names):
        problem = name_problem(name)
        if problem is not None:
            raise ConfigError(f"{where} 'parties[{index}].name': {problem}")
    if len(names) < 2:
        raise ConfigError(f"{where} 'parties': a split job needs at least two parties")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where} 'parties': a party is listed twice: {names}")
    if config.label_party not in names:
        raise ConfigError(
            f"{where} 'label_party': {config.label_party!r} is not a party: {names}"
        )
    for key, problem in job_limit_problems(config):
        raise ConfigError(f"{where} '{key}': {problem}")
    if config.compression not in COMPRESSION_METHODS:
        raise ConfigError(
            f"{where} 'compression.method': use one of {COMPRESSION_METHODS}"
        )
    for key, problem in config.privacy.problems():
        raise ConfigError(f"{where} 'privacy.{key}': {problem}")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"{where} 'optimizer.name': use one of {sorted(OPTIMIZERS)}")
    if config.predict not in PREDICT_SPLITS:
        raise ConfigError(f"{where} 'predict': use one of {PREDICT_SPLITS}")
    problem = name_problem(config.export)
    if problem is not None:
        raise ConfigError(f"{where} 'export': auto, none or a model version: {problem}")
    if config.init_job or config.init_version:
        for key in ("job", "version"):
            problem = name_problem(getattr(config, f"init_{key}"))
            if problem is not None:
                raise ConfigError(f"{where} 'init_from.{key}': {problem}")
        if config.init_job == config.job:
            raise ConfigError(
                f"{where} 'init_from.job': a job cannot start from its own "
                "export; give the new job a name of its own"
            )


OPTIMIZERS = ("adam", "sgd", "adagrad")
PREDICT_SPLITS = ("none", "validation", "train", "all")


def override_job(config: JobConfig, **overrides: object) -> JobConfig:
    """The config with command-line overrides applied (``None`` keeps a value)."""
    changed = dataclasses.replace(
        config, **{k: v for k, v in overrides.items() if v is not None}
    )
    validate_job_config(changed)
    return changed
