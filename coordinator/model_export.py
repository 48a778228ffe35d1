"""Has every party export its own part of the trained model under one version.

The coordinator sends the version, the epochs trained, the validation metrics
after them and an export id it picks once per export; each party writes its
part into its own output folder and returns the digests of its variables and
of its file list, and the export id its part holds. The coordinator keeps only
the version, its epoch and export id, and each party's digests (in the
manifest's ``exports``); a warm start or a scoring job sends them back, and
each party checks its part against them before using it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from splitrec.common.errors import ConfigError, JobFailedError, PeerError
from splitrec.common.history import EpochRecord, best_record, record_from_json
from splitrec.common.metrics import Metrics, TaskMetrics
from splitrec.common.paths import confined
from splitrec.config.job import JobConfig
from splitrec.config.jobspec import ModelVersion, PartExport
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.fan_out import at_every_party
from splitrec.coordinator.manifest import (
    MANIFEST_FILE,
    CheckpointEntry,
    Manifest,
    read_manifest,
)

logger = logging.getLogger(__name__)

AUTO = "auto"
NONE = "none"
# Versions an automatic export tries: ``epoch-E``, then ``epoch-E.2`` and on.
AUTOMATIC_TRIES = 20


def version_name(setting: str, epochs: int) -> str | None:
    """The version a job's ``export`` setting names after ``epochs`` epochs
    (None: no export)."""
    if setting == NONE:
        return None
    return f"epoch-{epochs}" if setting == AUTO else setting


@dataclass(frozen=True)
class ExportChoice:
    """What ``coordinator export`` exports: an epoch's record and the
    checkpoint taken after it (and, once written, the version)."""

    record: EpochRecord
    checkpoint: CheckpointEntry
    version: str = ""


def choose_export(
    manifest: Manifest | None, run_dir: Path, epoch: int | None, config: JobConfig
) -> ExportChoice:
    """The epoch to export (``epoch``, 1-based; None: the one with the best
    validation AUC) and the checkpoint the manifest keeps of it; a
    ``JobFailedError`` that says what is missing and what to do."""
    if manifest is None or not manifest.records:
        raise JobFailedError(
            f"{run_dir}: no finished epoch of job {config.job} is recorded here; "
            "run the job first (or pass the --runs-dir it ran with)",
            fatal=True,
        )
    records = [record_from_json(r) for r in manifest.records]
    if epoch is None:
        epoch = best_record(records).epoch
    by_epoch = {r.epoch: r for r in records}
    if epoch not in by_epoch:
        raise JobFailedError(
            f"job {config.job} has finished epochs {records[0].epoch} to "
            f"{records[-1].epoch}; epoch {epoch} is not among them",
            fatal=True,
        )
    kept = {e.epoch: e for e in manifest.checkpoints if e.step == 0}
    if epoch not in kept:
        held = sorted(e for e in kept if e > 0)
        raise JobFailedError(
            f"the checkpoint after epoch {epoch} of job {config.job} is no longer "
            f"kept (the manifest keeps those after epochs {held}; "
            f"checkpoint.keep is {config.keep_checkpoints} in {config.source}); "
            "export one of those, or raise checkpoint.keep and run the job again "
            "with --fresh",
            fatal=True,
        )
    return ExportChoice(by_epoch[epoch], kept[epoch])


def recorded_version(config: JobConfig, job: str, version: str) -> ModelVersion:
    """An exported version of ``job`` as its manifest in ``runs_dir`` recorded
    it (with the epochs it had trained); a ``ConfigError`` says what is
    missing."""
    folder = confined(config.runs_dir, job)
    manifest = read_manifest(folder)
    exports = manifest.exports if manifest is not None else {}
    if version not in exports:
        raise ConfigError(
            f"{config.source}: no model version {version!r} of job {job!r} is "
            f"recorded in {folder / MANIFEST_FILE} (recorded: "
            f"{sorted(exports) or 'none'}); export it first with "
            "splitrec export"
        )
    found = exports[version]
    if not found.get("export_id") or not found.get("files"):
        raise ConfigError(
            f"{config.source}: model version {version!r} of job {job!r} was "
            "exported before exports recorded each party's files, so its parts "
            "cannot be checked; export it again under a new version (python -m "
            "splitrec.coordinator export --version NAME) and use that one"
        )
    return ModelVersion(
        job, version, int(found["epoch"]), found["export_id"], dict(found["files"])
    )


def warm_start(config: JobConfig) -> ModelVersion | None:
    """The exported version a job starts from (``init_from``); None without a
    warm start."""
    if not config.init_job:
        return None
    found = recorded_version(config, config.init_job, config.init_version)
    if found.epoch >= config.epochs:
        raise ConfigError(
            f"{config.source}: key 'init_from': version {found.version!r} was "
            f"trained for {found.epoch} epochs and the job continues from there "
            f"up to 'epochs' ({config.epochs}); set epochs above {found.epoch}"
        )
    return found


def validation_metrics(record: EpochRecord, rows: int) -> Metrics:
    """An epoch's validation metrics, as its record holds them."""
    tasks = tuple(
        TaskMetrics(
            name,
            figures["val_loss"],
            figures["val_auc"],
            figures["val_precision"],
            figures["val_recall"],
        )
        for name, figures in (record.tasks or {}).items()
    )
    return Metrics(
        rows,
        record.val_loss,
        record.val_auc,
        record.val_precision,
        record.val_recall,
        tasks,
    )


def _mixed(version: str, parts: dict[str, PartExport]) -> str:
    """Why the parts do not make one version ("" when they come from one
    export): some party already held the version from an earlier export."""
    if len({p.export_id for p in parts.values()}) <= 1:
        return ""
    held = ", ".join(f"{n} from export {p.export_id}" for n, p in parts.items())
    return (
        f"the parts of model version {version} come from different exports "
        f"({held}): some party already held that version"
    )


def new_export_id() -> str:
    """A fresh export id: one per export, kept when the export is tried again."""
    return secrets.token_hex(8)


def export_everywhere(
    clients: dict[str, PartyClient],
    job: str,
    version: str,
    record: EpochRecord,
    validation_rows: int,
    automatic: bool = False,
    export_id: str = "",
) -> tuple[str, dict[str, PartExport]]:
    """Every party's part exported at once, under one export id (``export_id``;
    a new one when empty: an export tried again passes the one it used); the
    version and what each party reported of its part. An ``automatic``
    version that some party already holds with another model or from another
    export (an earlier run of the job) becomes ``<version>.2``, ``.3``, ...
    for every party alike."""
    metrics = validation_metrics(record, validation_rows)
    export_id = export_id or new_export_id()
    name = version
    for attempt in range(2, AUTOMATIC_TRIES + 2):
        try:
            parts = at_every_party(
                clients,
                lambda c, name=name: c.export_model(
                    job, name, record.epoch, metrics, export_id
                ),
            )
        except PeerError as exc:
            if not automatic or exc.code != "ALREADY_EXISTS":
                raise
            problem = str(exc)
        else:
            problem = _mixed(name, parts)
            if not problem:
                break
            if not automatic:
                raise JobFailedError(
                    f"{problem}; export under another version", fatal=True
                )
        logger.info("%s; trying %s.%d", problem, version, attempt)
        name = f"{version}.{attempt}"
    else:
        raise JobFailedError(
            f"model versions {version} to {name} all hold other models; set "
            "'export' in the job config to a version of your own"
        )
    logger.info(
        "model version %s (export %s): each party wrote its own part (%s)",
        name,
        export_id,
        ", ".join(f"{p} {d.model_digest[:12]}" for p, d in parts.items()),
    )
    return name, parts
