"""What a job's coordinator does with its models: export, evaluate again, score.

``ModelVersions`` is a part of ``JobDriver`` (``splitrec.coordinator.job``),
kept in a module of its own: it uses the driver's clients, checkpoints and
failure handling.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from splitrec.common.atomic import write_atomically
from splitrec.common.errors import JobFailedError, PeerError
from splitrec.common.history import (
    EpochRecord,
)
from splitrec.common.metrics import Metrics
from splitrec.config.jobspec import PartExport
from splitrec.coordinator.handshake import PreparedJob
from splitrec.coordinator.manifest import (
    MANIFEST_FILE,
    CheckpointEntry,
    Manifest,
    fingerprint,
    read_manifest,
    write_manifest,
)
from splitrec.coordinator.model_export import (
    AUTO,
    ExportChoice,
    choose_export,
    export_everywhere,
    new_export_id,
    version_name,
)

if TYPE_CHECKING:
    from pathlib import Path

    from splitrec.config.job import JobConfig
    from splitrec.coordinator.checkpointing import Checkpoints
    from splitrec.coordinator.client import PartyClient
    from splitrec.coordinator.job import JobDriver

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ModelVersions:
    """Exports, evaluations and scoring runs of a job, as part of ``JobDriver``."""

    # What it uses of the driver (``splitrec.coordinator.job.JobDriver``).
    config: JobConfig
    run_dir: Path
    clients: dict[str, PartyClient]
    checkpoints: Checkpoints
    if TYPE_CHECKING:
        _holding = JobDriver._holding
        _handshake = JobDriver._handshake
        _retrying = JobDriver._retrying
        _check_identity = JobDriver._check_identity
        _everywhere = JobDriver._everywhere
        _evaluate = JobDriver._evaluate

    def export(self, epoch: int | None, version: str | None) -> ExportChoice:
        """Every party exports its part of the model after ``epoch`` (1-based;
        None: the best validation AUC) of a run of the job, from the
        checkpoint the manifest keeps of it, under ``version`` (None:
        ``epoch-<E>``)."""

        def export() -> ExportChoice:
            manifest, choice, prepared = self._reopen(epoch, "export its models")
            name = self._export_version(
                manifest,
                choice.checkpoint,
                version or f"epoch-{choice.record.epoch}",
                choice.record,
                prepared.validation_rows,
                automatic=version is None,
            )
            self._everywhere(lambda c: c.end_job(self.config.job))
            return dataclasses.replace(choice, version=name)

        return self._holding(export)

    def evaluate(self, epoch: int | None) -> tuple[EpochRecord, Metrics]:
        """The validation metrics of the model after ``epoch`` (1-based; None:
        the one the run ended with: its last, or the best one early stopping
        went back to) of a run of the job, computed again by the parties from
        the checkpoint the manifest keeps of it; and that epoch's record."""

        def evaluate() -> tuple[EpochRecord, Metrics]:
            manifest, choice, _ = self._reopen(epoch, "evaluate its models")
            self._restore_exported(choice.checkpoint)
            metrics = self._evaluate(choice.record.epoch - 1)
            self._everywhere(lambda c: c.end_job(self.config.job))
            return choice.record, metrics

        if epoch is None:
            manifest = read_manifest(self.run_dir)
            if manifest is not None and manifest.records:
                epoch = manifest.final_epoch or manifest.records[-1]["epoch"]
        return self._holding(evaluate)

    def _reopen(
        self, epoch: int | None, doing: str
    ) -> tuple[Manifest, ExportChoice, PreparedJob]:
        """The job of an earlier run prepared again at every party, for one of
        its epochs (None: the best one): its manifest, the epoch's record and
        checkpoint, and the handshake. Refused when the settings or a party's
        data changed since."""
        manifest = read_manifest(self.run_dir)
        choice = choose_export(manifest, self.run_dir, epoch, self.config)
        prepared = self._handshake(self.config.connect_timeout)
        assert manifest is not None
        if fingerprint(prepared.spec) != manifest.fingerprint:
            raise JobFailedError(
                f"the settings in {self.config.source} differ from those of "
                f"the run recorded in {self.run_dir / MANIFEST_FILE}; restore "
                f"them to {doing}",
                fatal=True,
            )
        self._check_identity(manifest, prepared)
        return manifest, choice, prepared

    def score(self) -> dict:
        """A scoring job (``config.dataset``): every party aligns its rows of
        the dataset with the others' and loads its part of the model
        (``init_from``); the label party scores every shared row and writes
        the scores to its own output folder. Returns (and writes to
        ``scoring.json`` in the run folder) the rows shared and scored, all
        the coordinator learns, and how long each phase took."""

        def score() -> dict:
            started = time.monotonic()
            prepared = self._handshake(self.config.connect_timeout)
            prepared_at = time.monotonic()
            rows = self._predict()
            scored_at = time.monotonic()
            self._everywhere(lambda c: c.end_job(self.config.job))
            record = {
                "dataset": self.config.dataset,
                "model": self.config.init_version,
                "shared_rows": prepared.aligned_rows,
                "scored_rows": rows,
                "prepare_seconds": round(prepared_at - started, 3),
                "score_seconds": round(scored_at - prepared_at, 3),
                "rows_per_second": rows / max(scored_at - prepared_at, 1e-9),
            }
            write_atomically(
                self.run_dir / "scoring.json", json.dumps(record, indent=2) + "\n"
            )
            return record

        return self._holding(score)

    def _export(
        self,
        prepared: PreparedJob,
        manifest: Manifest,
        records: list[EpochRecord],
        epoch: int,
    ) -> str | None:
        """Every party exports its part of the model it holds at the end (that
        of ``epoch``: the last one, or the best one early stopping restored)
        under the version ``export`` names."""
        if not records:
            return None
        record = next(r for r in records if r.epoch == epoch)
        version = version_name(self.config.export, epoch)
        if version is None:
            return None
        final = (
            manifest.latest
            if epoch == records[-1].epoch
            else self.checkpoints.after_epoch(manifest, epoch)
        )
        assert final is not None
        return self._export_version(
            manifest,
            final,
            version,
            record,
            prepared.validation_rows,
            automatic=self.config.export == AUTO,
            restored=True,
            conflict=f"Set 'export' in {self.config.source} to another version "
            "and run the job again: it resumes at its end and only exports",
        )

    def _export_version(
        self,
        manifest: Manifest,
        entry: CheckpointEntry,
        version: str,
        record: EpochRecord,
        validation_rows: int,
        automatic: bool,
        restored: bool = False,
        conflict: str = "",
    ) -> str:
        """Every party exports the model of ``entry`` (``restored``: the one
        they hold now) as ``version``, retried as ``_exporting`` says; the
        manifest then records it. ``conflict``: what to do when a party holds
        another export of that version already (the error is then final)."""
        export_id = new_export_id()

        def export() -> tuple[str, dict[str, PartExport]]:
            try:
                return export_everywhere(
                    self.clients,
                    self.config.job,
                    version,
                    record,
                    validation_rows,
                    automatic=automatic,
                    export_id=export_id,
                )
            except PeerError as exc:
                if exc.code != "ALREADY_EXISTS" or not conflict:
                    raise
                raise JobFailedError(f"{exc}. {conflict}", fatal=True) from None

        name, digests = self._exporting(manifest, entry, export, restored=restored)
        manifest.add_export(name, record.epoch, digests)
        write_manifest(self.run_dir, manifest)
        return name

    def _exporting(
        self,
        manifest: Manifest,
        entry: CheckpointEntry,
        export: Callable[[], T],
        restored: bool = False,
    ) -> T:
        """``export()`` of the model ``entry`` holds (``restored``: the parties
        hold it now; else it is restored first). A failure that a retry can
        help (a party restarted, or was out of reach for a while) is retried
        as a recovery is: every party is awaited and prepares the job again,
        ``entry`` is restored and the same export runs again; a party that
        already holds its part whole answers at once, so the manifest names the
        version only once every party holds it."""

        def attempt(number: int) -> T:
            if number:
                prepared = self._handshake(self.config.recovery_timeout)
                self._check_identity(manifest, prepared)
            if number or not restored:
                self._restore_exported(entry)
            return export()

        return self._retrying("exporting", attempt)

    def _restore_exported(self, entry: CheckpointEntry) -> None:
        """Restores the checkpoint an export takes; one that a party lost ends
        the export at once (no retry brings it back)."""
        try:
            self.checkpoints.restore_entry(entry)
        except PeerError as exc:
            if exc.code != "DATA_LOSS":
                raise
            raise JobFailedError(
                f"{exc}; the export takes checkpoint {entry.checkpoint_id} (after "
                f"epoch {entry.epoch}) of job {self.config.job}, so that epoch "
                "cannot be exported any more: export another one "
                "(splitrec export --epoch N)",
                fatal=True,
            ) from None

    def _predict(self) -> int:
        if self.config.predict == "none":
            return 0
        results = self._everywhere(
            lambda c: c.predict(self.config.job, self.config.predict)
        )
        rows = results[self.config.label_party]
        logger.info(
            "party %s wrote %d %s scores to its own output folder",
            self.config.label_party,
            rows,
            self.config.predict,
        )
        return rows
