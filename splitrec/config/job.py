"""A job's config file: the parties, the training settings every party shares.

Loaded from YAML (``load_job_config``) or built in Python
(``JobConfig.model_validate(mapping)``, in the file's layout or with the flat
attribute names), validated alike; ``override_job`` applies command-line flags.
"""

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

from splitrec.common.compression import METHODS as COMPRESSION_METHODS
from splitrec.common.errors import ConfigError
from splitrec.common.history import metric_problem
from splitrec.common.names import name_problem, run_name_problem
from splitrec.config.base import (
    ConfigModel,
    Limited,
    Number,
    StrictBool,
    StrictInt,
    StrictStr,
    base_folder,
    checked_run_name,
    config_path,
    from_file,
    join_key,
    nested,
    problem,
    resolve,
    source_of,
)
from splitrec.config.jobspec import COMPENSATIONS, STRATEGIES
from splitrec.config.limits import (
    Limit,
    count,
    job_limit_problems,
)
from splitrec.config.party import JobPartyConfig
from splitrec.config.privacy import DEFENSES, DP_RELEASES, MAX_MID_DIM, PrivacySettings
from splitrec.config.reader import load_yaml_mapping
from splitrec.config.tls import INSECURE, TlsConfig, tls_missing

OPTIMIZERS = ("adam", "sgd", "adagrad")
PREDICT_SPLITS = ("none", "validation", "train", "all")


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

    name: StrictStr = Field(
        "sync",
        description="sync: every party updates its model at every step; async: "
        "a feature party updates its base once every local_steps steps, with the "
        "gradients of all of them, and sends those steps' forwards without "
        "waiting (one round trip per group); the label party still updates at "
        "every step.",
        json_schema_extra={"enum": list(STRATEGIES)},
    )
    local_steps: StrictInt = Field(
        4, description="Async: the steps a feature party's update takes together."
    )
    pipeline_size: StrictInt | Literal["auto"] = Field(
        1,
        description="Batches in flight at once (1: one step after another; up to "
        "64), or auto: the depth that hides the measured round trip between the "
        "parties, adapted as it changes, up to max_pipeline_size.",
    )
    max_pipeline_size: StrictInt = Field(
        16, description="The deepest pipeline auto may choose (1 to 64)."
    )
    warmup_steps: StrictInt = Field(
        100,
        description="Steps taken one at a time before the pipeline fills.",
    )
    compensation: StrictStr = Field(
        "none",
        description="What a stale forward does about the updates it lacks: none, "
        "or predict (it runs on the weights predicted for its step: the current "
        "ones plus the recent update per missing step).",
        json_schema_extra={"enum": list(COMPENSATIONS)},
    )
    pipeline_plan: StrictStr | None = Field(
        None,
        description="A file of the depths an earlier auto run chose (each feature "
        "party's pipeline-depths.json, as {party: [[step, depth], ...]}): the run "
        "takes them instead of choosing, and repeats that run bit for bit.",
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


MONITOR_MODES = ("auto", "min", "max")


class EarlyStoppingSection(ConfigModel):
    """Training ends when the monitored figure has not improved for
    ``patience`` epochs; the parties then go back to its best epoch."""

    monitor: StrictStr = Field(
        "val_auc",
        description="The recorded figure judged after each epoch: val_auc, "
        "val_loss, train_loss, ... or '<task>/<figure>' in a job of several tasks.",
    )
    patience: Limited(int, count(1, 100_000)) = Field(
        2, description="Epochs without improvement before training ends."
    )
    min_delta: Limited(float, Limit(0.0, 1e9)) = Field(
        0.0, description="The least change that counts as an improvement."
    )
    mode: StrictStr = Field(
        "auto",
        description="min, max, or auto: min for losses, time and privacy budget, "
        "max otherwise.",
        json_schema_extra={"enum": list(MONITOR_MODES)},
    )
    restore_best: StrictBool = Field(
        True,
        description="Restore the best epoch's checkpoint at every party before the "
        "final export and predictions.",
    )

    @field_validator("monitor")
    @classmethod
    def _monitor(cls, value: str) -> str:
        found = metric_problem(value)
        if found is not None:
            raise problem("", found)
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in MONITOR_MODES:
            raise problem("", f"use one of {', '.join(MONITOR_MODES)}")
        return value


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
    per_user: StrictBool = Field(
        False,
        description="Also account ε per user: every feature party names the column "
        "of whom each row is about (data.user_column in its config).",
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


class MidSection(ConfigModel):
    """MID: a variational information bottleneck on what each feature party
    sends, its KL term added to each base update."""

    weight: Number = Field(
        description="The KL term's weight (> 0): the larger, the less the sent "
        "tensors say of a feature party's columns, at a cost in accuracy."
    )
    dim: StrictInt = Field(16, description=f"The code's width (1 to {MAX_MID_DIM}).")
    releases: StrictStr = Field(
        "training",
        description="What sends a sampled code: training (the training forwards; "
        "evaluation and prediction send the code's mean) or all (every pass).",
        json_schema_extra={"enum": list(DP_RELEASES)},
    )


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
    mid: MidSection | None = Field(None, description="MID at the feature parties.")
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
        return checked_run_name(value) if value else value

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
                dp_per_user=dp.per_user,
            )
        if self.mid is not None:
            if not self.mid.weight > 0:
                raise problem(join_key(key, "mid.weight"), "must be greater than 0")
            if not 1 <= self.mid.dim <= MAX_MID_DIM:
                raise problem(
                    join_key(key, "mid.dim"),
                    f"must be an integer from 1 to {MAX_MID_DIM}, got {self.mid.dim}",
                )
            if self.mid.releases not in DP_RELEASES:
                raise problem(
                    join_key(key, "mid.releases"),
                    f"{self.mid.releases!r}: use training (the training forwards "
                    "only) or all (the evaluation and prediction passes too)",
                )
            values.update(
                mid_weight=self.mid.weight,
                mid_dim=self.mid.dim,
                mid_releases=self.mid.releases,
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
    early_stopping: EarlyStoppingSection | None = Field(
        None, description="End training when a figure stops improving."
    )
    tensorboard: StrictBool = Field(
        True,
        description="Write TensorBoard event files under <runs_dir>/<job>/tensorboard.",
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
        return checked_run_name(value)

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
            "max_pipeline_size": strategy.max_pipeline_size,
            "pipeline_warmup_steps": strategy.warmup_steps,
            "compensation": strategy.compensation,
            "strategy_name": strategy.name,
            "local_steps": strategy.local_steps,
            "pipeline_plan": resolve(base_folder(info), strategy.pipeline_plan)
            if strategy.pipeline_plan
            else None,
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
            "early_stopping": self.early_stopping,
            "tensorboard": self.tensorboard,
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
    pipeline_size: StrictInt | Literal["auto"] = 1
    max_pipeline_size: StrictInt = 16
    pipeline_warmup_steps: StrictInt = 100
    compensation: StrictStr = "none"
    pipeline_plan: Path | None = None
    strategy_name: StrictStr = "sync"
    local_steps: StrictInt = 4
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
    early_stopping: EarlyStoppingSection | None = None
    tensorboard: StrictBool = True
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
        return config_path(value, info)

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
    if config.compensation not in COMPENSATIONS:
        return "strategy.compensation", f"use one of {COMPENSATIONS}"
    if config.strategy_name not in STRATEGIES:
        return "strategy.name", f"use one of {STRATEGIES}"
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
