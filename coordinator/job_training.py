"""The job's epochs: training windows, validation, progress and callbacks.

``TrainingLoop`` is a part of ``JobDriver`` (``splitrec.coordinator.job``),
kept in a module of its own: it uses the driver's clients, checkpoints,
callbacks and failure handling.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from splitrec.common.errors import JobFailedError
from splitrec.common.history import (
    EpochRecord,
    record_from_json,
    write_history,
)
from splitrec.common.metrics import Metrics
from splitrec.common.names import name_problem
from splitrec.common.throughput import SteadyRate
from splitrec.coordinator.callbacks import (
    ProgressReport,
    TrainingControl,
)
from splitrec.coordinator.handshake import PreparedJob
from splitrec.coordinator.manifest import (
    Manifest,
    write_manifest,
)
from splitrec.coordinator.progress import EpochProgress
from splitrec.coordinator.records import privacy_fields
from splitrec.coordinator.traffic_report import TrafficLedger, write_traffic
from splitrec.coordinator.windows import Window, run_window
from splitrec.v1 import control_pb2
from splitrec.wire import serde

if TYPE_CHECKING:
    from pathlib import Path

    from splitrec.config.job import JobConfig
    from splitrec.coordinator.callbacks import Callbacks
    from splitrec.coordinator.checkpointing import Checkpoints
    from splitrec.coordinator.client import PartyClient
    from splitrec.coordinator.job import JobDriver
    from splitrec.coordinator.ownership import Holds

logger = logging.getLogger(__name__)


class TrainingLoop:
    """Trains a job epoch by epoch, as part of ``JobDriver``."""

    # What it uses of the driver (``splitrec.coordinator.job.JobDriver``).
    config: JobConfig
    run_dir: Path
    clients: dict[str, PartyClient]
    checkpoints: Checkpoints
    callbacks: Callbacks
    progress: bool
    _prepared: PreparedJob | None
    _holds: Holds | None
    if TYPE_CHECKING:
        _export_version = JobDriver._export_version
        _restore_exported = JobDriver._restore_exported
        _everywhere = JobDriver._everywhere

    def _control(
        self, manifest: Manifest, records: list[EpochRecord], ledger: TrafficLedger
    ) -> TrainingControl:
        """What callbacks may do between epochs, at every party."""

        def export(version: str) -> str:
            problem = name_problem(version)
            if problem is not None:
                raise JobFailedError(f"model version {version!r} {problem}", fatal=True)
            assert self._prepared is not None and manifest.latest is not None
            return self._export_version(
                manifest,
                manifest.latest,
                version,
                control.records[-1],
                self._prepared.validation_rows,
                automatic=False,
                restored=True,
            )

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
