"""Drives one job from handshake to history: the coordinator's main loop."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from splitrec.common.atomic import write_atomically
from splitrec.common.errors import JobFailedError, PeerError, SplitRecError
from splitrec.common.history import (
    EpochRecord,
    plot_curves,
    record_from_json,
    write_history,
)
from splitrec.common.metrics import Metrics
from splitrec.common.names import name_problem
from splitrec.common.paths import check_writable, confined
from splitrec.common.throughput import SteadyRate
from splitrec.config.fingerprint import changes
from splitrec.config.job import JobConfig
from splitrec.config.jobspec import PartExport
from splitrec.coordinator.callbacks import (
    Callback,
    Callbacks,
    FitInfo,
    ProgressReport,
    TrainingControl,
)
from splitrec.coordinator.checkpointing import Checkpoints
from splitrec.coordinator.client import Owner, PartyClient
from splitrec.coordinator.early_stopping import EarlyStopping
from splitrec.coordinator.failures import is_fatal
from splitrec.coordinator.fan_out import at_every_party
from splitrec.coordinator.handshake import PreparedJob, describe_all, prepare_all
from splitrec.coordinator.manifest import (
    MANIFEST_FILE,
    CheckpointEntry,
    Manifest,
    fingerprint,
    read_manifest,
    recorded_exports,
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
from splitrec.coordinator.ownership import Holds, RunLock
from splitrec.coordinator.progress import EpochProgress
from splitrec.coordinator.records import privacy_fields
from splitrec.coordinator.tensorboard_log import TensorBoard
from splitrec.coordinator.traffic_report import TrafficLedger, write_traffic
from splitrec.coordinator.windows import Window, run_window
from splitrec.security.tls import load_credentials
from splitrec.v1 import control_pb2
from splitrec.wire import serde

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class JobResult:
    records: list[EpochRecord]
    run_dir: Path
    predicted_rows: int


class JobDriver:
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

    def export(self, epoch: int | None, version: str | None) -> ExportChoice:
        """Every party exports its part of the model after ``epoch`` (1-based;
        None: the best validation AUC) of a run of the job, from the
        checkpoint the manifest keeps of it, under ``version`` (None:
        ``epoch-<E>``)."""

        def export() -> ExportChoice:
            manifest, choice, prepared = self._reopen(epoch, "export its models")
            export_id = new_export_id()
            name, digests = self._exporting(
                manifest,
                choice.checkpoint,
                lambda: export_everywhere(
                    self.clients,
                    self.config.job,
                    version or f"epoch-{choice.record.epoch}",
                    choice.record,
                    prepared.validation_rows,
                    automatic=version is None,
                    export_id=export_id,
                ),
            )
            manifest.add_export(name, choice.record.epoch, digests)
            write_manifest(self.run_dir, manifest)
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

    # --- training -------------------------------------------------------------

    def _control(
        self, manifest: Manifest, records: list[EpochRecord], ledger: TrafficLedger
    ) -> TrainingControl:
        """What callbacks may do between epochs, at every party."""

        def export(version: str) -> str:
            problem = name_problem(version)
            if problem is not None:
                raise JobFailedError(f"model version {version!r} {problem}", fatal=True)
            assert self._prepared is not None and manifest.latest is not None
            record = control.records[-1]
            export_id = new_export_id()
            name, digests = self._exporting(
                manifest,
                manifest.latest,
                lambda: export_everywhere(
                    self.clients,
                    self.config.job,
                    version,
                    record,
                    self._prepared.validation_rows,
                    automatic=False,
                    export_id=export_id,
                ),
                restored=True,
            )
            manifest.add_export(name, record.epoch, digests)
            write_manifest(self.run_dir, manifest)
            return name

        def restore(epoch: int) -> None:
            self._restore_exported(self.checkpoints.after_epoch(manifest, epoch))

        def wire() -> tuple[float, float]:
            return ledger.totals()

        control = TrainingControl(records, manifest.exports, export, restore, wire)
        return control

    def _train(
        self,
        prepared: PreparedJob,
        manifest: Manifest,
        ledger: TrafficLedger,
        control: TrainingControl,
    ) -> list[EpochRecord]:
        entry = manifest.latest
        assert entry is not None
        records = [record_from_json(r) for r in manifest.records]
        control.records = records
        steps = prepared.steps_per_epoch
        for epoch in range(entry.epoch, manifest.stopped or self.config.epochs):
            first = entry.step if epoch == entry.epoch else 0
            started = time.monotonic()
            train_metrics, steady = self._train_epoch(
                epoch, first, steps, manifest, records, ledger
            )
            seconds = time.monotonic() - started
            val = self._evaluate(epoch)
            record = EpochRecord.of(
                epoch, train_metrics, val, prepared.train_rows, seconds, steady
            )
            record = dataclasses.replace(
                record, **privacy_fields(self.config.privacy, prepared, epoch)
            )
            records.append(record)
            write_history(self.run_dir / "history.json", records)
            logger.info("%s", record.summary(self.config.epochs))
            self.checkpoints.save(
                manifest,
                epoch + 1,
                0,
                records,
                ledger.state(),
                pinned=self.callbacks.checkpoints_needed(records),
            )
            self.callbacks.on_epoch_end(record, control)
            if control.stop_requested and epoch + 1 < self.config.epochs:
                manifest.stopped = epoch + 1
                write_manifest(self.run_dir, manifest)
                logger.info(
                    "job %s: training ends after epoch %d: %s",
                    self.config.job,
                    epoch + 1,
                    "; ".join(control.stopped_by) or "a callback stopped it",
                )
                break
        return records

    def _write_traffic(self, prepared: PreparedJob, ledger: TrafficLedger) -> None:
        payload = sum(
            2 * 4 * prepared.spec.party(name).output.width
            for name in prepared.spec.feature_parties
        )
        summary = ledger.summary(
            samples=self.config.epochs * prepared.train_rows,
            steps=self.config.epochs * prepared.steps_per_epoch,
            payload_per_sample=payload,
        )
        write_traffic(self.run_dir / "traffic.json", summary)
        logger.info(
            "wire: %.1f party-to-party bytes per training sample (raw float32 "
            "payload %d, ratio %.4f); coordinator %.1f bytes per step",
            summary["peer_bytes_per_sample"],
            payload,
            summary["peer_overhead_ratio"],
            summary["control_bytes_per_step"],
        )

    def _train_epoch(
        self,
        epoch: int,
        start: int,
        steps: int,
        manifest: Manifest,
        records: list[EpochRecord],
        ledger: TrafficLedger,
    ) -> tuple[Metrics, float]:
        """Trains an epoch from step ``start`` in windows that end at checkpoint
        boundaries; returns its metrics and steady throughput."""
        size = self.config.steps_per_window or steps
        every = self.config.checkpoint_every
        bar = EpochProgress(epoch, self.config.epochs, steps) if self.progress else None
        steady = SteadyRate()
        done_samples = 0
        started = time.monotonic()

        def show(progress: control_pb2.StepProgress) -> None:
            samples = done_samples + progress.samples
            steady.mark(samples)
            task_losses = {t.name: t.loss for t in progress.metrics.tasks}
            if bar is not None:
                bar.update(
                    progress.next_step, samples, progress.metrics.loss, task_losses
                )
            self.callbacks.on_progress(
                ProgressReport(
                    epoch=epoch + 1,
                    epochs=self.config.epochs,
                    step=progress.next_step,
                    steps=steps,
                    samples=samples,
                    loss=progress.metrics.loss,
                    task_losses=task_losses,
                    samples_per_second=samples / max(time.monotonic() - started, 1e-9),
                )
            )

        label = None
        first = start
        try:
            while first < steps:
                end = min(first + size, steps)
                if every:
                    end = min(end, (first // every + 1) * every)
                window = Window(
                    self.config.job, epoch, first, end - first, self.config.report_every
                )
                assert self._holds is not None
                self._holds.check()
                before = ledger.control_snapshot()
                last = run_window(
                    self.clients,
                    self.config.label_party,
                    window,
                    show,
                    self.config.rpc_timeout,
                )
                ledger.add_window(before, last)
                label = last[self.config.label_party]
                done_samples += label.samples
                first = end
                if every and end % every == 0 and end < steps:
                    self.checkpoints.save(
                        manifest,
                        epoch,
                        end,
                        records,
                        ledger.state(),
                        pinned=self.callbacks.checkpoints_needed(records),
                    )
        finally:
            if bar is not None:
                bar.finish()
        if label is None or not label.has_metrics:
            raise JobFailedError(
                f"party {self.config.label_party} reported no training metrics"
            )
        return serde.metrics_from_proto(label.metrics), steady.rate()

    def _evaluate(self, epoch: int) -> Metrics:
        logger.debug("epoch %d: evaluating at every party", epoch + 1)
        results = self._everywhere(
            lambda c: c.evaluate(self.config.job, epoch, "validation")
        )
        metrics = results[self.config.label_party][1]
        if metrics is None:
            raise JobFailedError(
                f"party {self.config.label_party} returned no validation metrics"
            )
        return metrics

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
        export_id = new_export_id()

        def export() -> tuple[str, dict[str, PartExport]]:
            try:
                return export_everywhere(
                    self.clients,
                    self.config.job,
                    version,
                    record,
                    prepared.validation_rows,
                    automatic=self.config.export == AUTO,
                    export_id=export_id,
                )
            except PeerError as exc:
                if exc.code != "ALREADY_EXISTS":
                    raise
                raise JobFailedError(
                    f"{exc}. Set 'export' in {self.config.source} to another "
                    "version and run the job again: it resumes at its end and "
                    "only exports",
                    fatal=True,
                ) from None

        name, digests = self._exporting(manifest, final, export, restored=True)
        manifest.add_export(name, epoch, digests)
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
