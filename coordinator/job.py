"""Drives one job from handshake to history: the coordinator's main loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from splitrec.common.errors import JobFailedError, PeerError, SplitRecError
from splitrec.common.history import (
    EpochRecord,
    plot_curves,
    record_from_json,
)
from splitrec.common.paths import check_writable, confined
from splitrec.config.fingerprint import changes
from splitrec.config.job import JobConfig
from splitrec.coordinator.callbacks import (
    Callback,
    Callbacks,
    FitInfo,
)
from splitrec.coordinator.checkpointing import Checkpoints
from splitrec.coordinator.client import Owner, PartyClient
from splitrec.coordinator.early_stopping import EarlyStopping
from splitrec.coordinator.failures import is_fatal
from splitrec.coordinator.fan_out import at_every_party
from splitrec.coordinator.handshake import PreparedJob, describe_all, prepare_all
from splitrec.coordinator.job_training import TrainingLoop
from splitrec.coordinator.job_versions import ModelVersions
from splitrec.coordinator.manifest import (
    MANIFEST_FILE,
    Manifest,
    fingerprint,
    read_manifest,
    recorded_exports,
    write_manifest,
)
from splitrec.coordinator.ownership import Holds, RunLock
from splitrec.coordinator.tensorboard_log import TensorBoard
from splitrec.coordinator.traffic_report import TrafficLedger
from splitrec.security.tls import load_credentials

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class JobResult:
    records: list[EpochRecord]
    run_dir: Path
    predicted_rows: int


class JobDriver(TrainingLoop, ModelVersions):
    """Holds the clients of one job and runs it epoch by epoch."""

    def __init__(
        self,
        config: JobConfig,
        fresh: bool = False,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
    ) -> None:
        self.config = config
        self.fresh = fresh
        self.progress = progress
        self.callbacks = Callbacks([*_configured_callbacks(config), *callbacks])
        self.run_dir = confined(config.runs_dir, config.job)
        self.owner = Owner.of_this_process(self.run_dir)
        self._failures = 0
        credentials = load_credentials(config.tls)
        self.clients = {
            p.name: PartyClient(
                p.name,
                p.address,
                config.rpc_timeout,
                credentials,
                p.expected_identity,
                self.owner,
            )
            for p in config.parties
        }
        self.checkpoints = Checkpoints(
            config.job, self.run_dir, config.keep_checkpoints, self.clients
        )
        self._holds: Holds | None = None
        self._prepared: PreparedJob | None = None
        # The model version the parties exported at the end (None: none).
        self.exported: str | None = None
        # Why training ended before its last epoch (a callback's reasons).
        self.stopped_by: list[str] = []

    def run(self) -> JobResult:
        """Runs the job to the end; resumes it when its manifest says it is
        unfinished, and recovers from party failures from the last checkpoint.

        The job's runs folder is locked and the job held at every party for the
        whole run: a second coordinator of the same job is refused at once.
        """
        try:
            records, predicted = self._holding(self._run)
        finally:
            self.callbacks.on_stop()
        plot_curves(self.run_dir / "curves.png", records)
        return JobResult(records, self.run_dir, predicted)

    def _holding(self, action: Callable[[], T]) -> T:
        """Runs ``action`` with the job's runs folder locked and the job held
        at every party: a second coordinator of the same job is refused at
        once. After a failure every reachable party drops the job."""
        check_writable(self.config.runs_dir, "runs_dir", self.config.source)
        try:
            with RunLock(self.run_dir), Holds(self.clients, self.config.job) as holds:
                self._holds = holds
                try:
                    return action()
                except BaseException:
                    self._release()
                    raise
        finally:
            for client in self.clients.values():
                client.close()

    def _run(self) -> tuple[list[EpochRecord], int]:
        prepared, manifest, resumed = self._start()
        self._prepared = prepared
        ledger = TrafficLedger(self.clients, prepared.spec.feature_parties)
        records = [record_from_json(r) for r in manifest.records]
        control = self._control(manifest, records, ledger)
        self.callbacks.on_fit_start(
            FitInfo(
                job=self.config.job,
                epochs=self.config.epochs,
                steps_per_epoch=prepared.steps_per_epoch,
                train_rows=prepared.train_rows,
                validation_rows=prepared.validation_rows,
                run_dir=self.run_dir,
                resumed=resumed,
                records=tuple(records),
                tasks=tuple(records[-1].tasks or ()) if records else None,
                exports=tuple(manifest.exports),
            )
        )
        while True:
            try:
                if resumed:
                    ledger.restore(self.checkpoints.restore(manifest).traffic)
                records = self._train(prepared, manifest, ledger, control)
                break
            except SplitRecError as exc:
                prepared = self._prepared = self._recover(manifest, exc)
                resumed = True
        self._write_traffic(prepared, ledger)
        control.records = records
        control.model_epoch = records[-1].epoch if records else 0
        self.callbacks.on_fit_end(control)
        self.stopped_by = control.stopped_by
        manifest.final_epoch = control.model_epoch
        self.exported = self._export(prepared, manifest, records, control.model_epoch)
        predicted = self._predict()
        manifest.finished = True
        write_manifest(self.run_dir, manifest)
        self._everywhere(lambda c: c.end_job(self.config.job))
        return records, predicted

    # --- start, failures and recovery -------------------------------------------

    def _handshake(self, wait: float) -> PreparedJob:
        """Describes every party (waiting up to ``wait`` for each), holds the
        job at every party, then prepares it everywhere (rows and steps derived
        afresh)."""
        descriptions = describe_all(self.config, self.clients, wait)
        assert self._holds is not None
        self._holds.wait(self.config.rpc_timeout)
        return prepare_all(self.config, self.clients, descriptions)

    def _retrying(self, doing: str, action: Callable[[int], T]) -> T:
        """``action(attempt)`` until it succeeds; each failure goes through
        ``_failed`` (which gives up on a fatal one or when attempts run out)."""
        attempt = 0
        while True:
            try:
                return action(attempt)
            except SplitRecError as exc:
                self._failed(exc, doing)
            attempt += 1

    def _start(self) -> tuple[PreparedJob, Manifest, bool]:
        """The first handshake and the manifest (a fresh one, or the unfinished
        run to resume). Each party first gets ``connect_timeout`` to come up;
        after that, a party that is briefly unavailable (restarting, or dropping
        a PSI stream) gets the same bounded retries as a recovery."""

        def begin(attempt: int) -> tuple[PreparedJob, Manifest, bool]:
            wait = (
                self.config.connect_timeout
                if attempt == 0
                else (self.config.recovery_timeout)
            )
            prepared = self._handshake(wait)
            return (prepared, *self._open_manifest(prepared))

        try:
            return begin(0)
        except SplitRecError as exc:
            if isinstance(exc, PeerError) and exc.rpc == "Describe":
                raise  # a party that never came up within connect_timeout
            self._failed(exc, "starting")
        return self._retrying("starting", lambda attempt: begin(attempt + 1))

    def _failed(self, error: SplitRecError, doing: str) -> None:
        """Counts a failure and waits before the next try; raises when no retry
        can help (a fatal error, or the attempts are used up)."""
        if self._holds is not None:
            self._holds.check()
        if is_fatal(error):
            raise JobFailedError(str(error), fatal=True) from None
        self._failures += 1
        limit = self.config.max_recoveries
        if self._failures > limit:
            raise JobFailedError(
                f"job {self.config.job} failed {self._failures} times; last: {error}"
            ) from None
        logger.warning(
            "job %s: %s while %s; trying again (attempt %d of %d)",
            self.config.job,
            error,
            doing,
            self._failures,
            limit,
        )
        time.sleep(min(2.0 ** (self._failures - 1), 30.0))

    def _recover(self, manifest: Manifest, error: SplitRecError) -> PreparedJob:
        """Waits for every party and prepares the job again (its rows and steps
        derived afresh, its parties' fingerprints checked); the caller then
        restores the last checkpoint."""
        entry = manifest.latest
        assert entry is not None
        if is_fatal(error):
            self._failed(error, "training")  # raises: no recovery helps
        logger.warning(
            "job %s: recovering from checkpoint %d (epoch %d, step %d)",
            self.config.job,
            entry.checkpoint_id,
            entry.epoch + 1,
            entry.step,
        )
        started = time.monotonic()
        self._failed(error, "training")

        def prepare(attempt: int) -> PreparedJob:
            prepared = self._handshake(self.config.recovery_timeout)
            self._check_identity(manifest, prepared)
            return prepared

        prepared = self._retrying("recovering", prepare)
        logger.info(
            "job %s: recovered in %.1f s", self.config.job, time.monotonic() - started
        )
        return prepared

    def _check_identity(self, manifest: Manifest, prepared: PreparedJob) -> None:
        """Refuses to go on when a party's data or settings changed since the job
        started, or the alignment gives other row counts."""
        changed = changes(manifest.parties, prepared.fingerprints)
        if changed:
            raise JobFailedError(
                f"job {self.config.job} cannot go on: {', '.join(changed)} changed "
                "since the job started (its manifest "
                f"{self.run_dir / MANIFEST_FILE}); restore them to go on, or run "
                "with --fresh to start the job afresh",
                fatal=True,
            )
        if manifest.rows and manifest.rows != prepared.rows:
            raise JobFailedError(
                f"job {self.config.job} cannot go on: the aligned rows are "
                f"{prepared.rows} now, {manifest.rows} when the job started; run "
                "with --fresh to start the job afresh",
                fatal=True,
            )

    def _open_manifest(self, prepared: PreparedJob) -> tuple[Manifest, bool]:
        """The unfinished run to resume (checked, not yet restored), or a fresh
        one with checkpoint 0 of the initial weights; and whether it resumes.
        A fresh one keeps the model versions earlier runs of the job exported:
        the parties hold them still."""
        existing = None if self.fresh else read_manifest(self.run_dir)
        print_ = fingerprint(prepared.spec)
        if existing is not None and not existing.finished and existing.latest:
            # What changed at a party first, by name (the job's settings hold
            # each party's model structure, which follows its features too).
            self._check_identity(existing, prepared)
            if existing.fingerprint != print_:
                raise JobFailedError(
                    f"{self.run_dir / MANIFEST_FILE} belongs to an unfinished run of "
                    f"job {self.config.job} with other settings; run with --fresh to "
                    "start afresh, or restore the settings to resume it",
                    fatal=True,
                )
            entry = existing.latest
            logger.info(
                "resuming job %s from checkpoint %d (epoch %d, step %d)",
                self.config.job,
                entry.checkpoint_id,
                entry.epoch + 1,
                entry.step,
            )
            return existing, True
        manifest = Manifest(
            self.config.job,
            print_,
            parties=prepared.fingerprints,
            rows=prepared.rows,
            settings={
                "epochs": self.config.epochs,
                "batch_size": self.config.batch_size,
            },
            exports=dict(existing.exports)
            if existing is not None
            else recorded_exports(self.run_dir),
        )
        if manifest.exports:
            logger.info(
                "job %s starts afresh and keeps the model versions its earlier "
                "runs exported: %s",
                self.config.job,
                ", ".join(sorted(manifest.exports)),
            )
        # A warm-started job continues after the epochs its model trained.
        self.checkpoints.save(manifest, prepared.spec.start_epoch, 0, [])
        return manifest, False

    def _release(self) -> None:
        """After a failure or a signal: asks every reachable party to drop the
        job (best effort, a few seconds at most)."""

        def end(client: PartyClient) -> None:
            try:
                client.end_job(self.config.job, timeout=3.0)
            except SplitRecError as exc:
                logger.info("could not end the job at %s: %s", client.name, exc)

        at_every_party(self.clients, end)

    def _everywhere(self, call: Callable[[PartyClient], T]) -> dict[str, T]:
        """Runs ``call(client)`` at every party at once; the first failure is raised."""
        return at_every_party(self.clients, call)


def _configured_callbacks(config: JobConfig) -> list[Callback]:
    """The callbacks the job's config asks for (``tensorboard``,
    ``early_stopping``)."""
    found: list[Callback] = [TensorBoard()] if config.tensorboard else []
    if config.early_stopping is not None:
        settings = config.early_stopping
        found.append(
            EarlyStopping(
                settings.monitor,
                settings.patience,
                settings.min_delta,
                settings.mode,
                settings.restore_best,
            )
        )
    return found
