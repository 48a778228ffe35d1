"""Drives one job from handshake to history: the coordinator's main loop."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common import serde
from common.config import JobConfig
from common.errors import JobFailedError, PeerError, SplitRecError
from common.history import EpochRecord, plot_curves, write_history
from common.metrics import Metrics
from common.privacy.accountant import embedding_privacy
from common.privacy.settings import PrivacySettings
from common.throughput import SteadyRate
from common.tls import load_credentials
from coordinator.client import PartyClient
from coordinator.handshake import PreparedJob, handshake
from coordinator.manifest import (
    MANIFEST_FILE,
    CheckpointEntry,
    Manifest,
    fingerprint,
    read_manifest,
    write_manifest,
)
from coordinator.progress import EpochProgress
from coordinator.traffic_report import TrafficLedger, write_traffic
from coordinator.windows import Window, run_window
from splitrec.v1 import control_pb2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    records: list[EpochRecord]
    run_dir: Path
    predicted_rows: int


class JobDriver:
    """Holds the clients of one job and runs it epoch by epoch."""

    def __init__(self, config: JobConfig, fresh: bool = False) -> None:
        self.config = config
        self.fresh = fresh
        self.run_dir = config.runs_dir / config.job
        self._recoveries = 0
        credentials = load_credentials(config.tls)
        self.clients = {
            p.name: PartyClient(
                p.name, p.address, config.rpc_timeout, credentials, p.expected_identity
            )
            for p in config.parties
        }

    def run(self) -> JobResult:
        """Runs the job to the end; resumes it when its manifest says it is
        unfinished, and recovers from party failures from the last checkpoint."""
        try:
            prepared = handshake(self.config, self.clients)
            logger.info(
                "job %s: %d training rows, %d validation rows, %d steps per epoch",
                self.config.job,
                prepared.train_rows,
                prepared.validation_rows,
                prepared.steps_per_epoch,
            )
            manifest = self._open_manifest(prepared)
            records = self._train(prepared, manifest)
            predicted = self._predict()
            manifest.finished = True
            write_manifest(self.run_dir, manifest)
            self._end_job()
        except BaseException:
            self._release()
            raise
        finally:
            for client in self.clients.values():
                client.close()
        plot_curves(self.run_dir / "curves.png", records)
        return JobResult(records, self.run_dir, predicted)

    # --- checkpoints ----------------------------------------------------------

    def _open_manifest(self, prepared: PreparedJob) -> Manifest:
        """The unfinished run to resume (restored everywhere), or a fresh one
        with checkpoint 0 of the initial weights."""
        existing = None if self.fresh else read_manifest(self.run_dir)
        print_ = fingerprint(prepared.spec)
        if existing is not None and not existing.finished and existing.latest:
            if existing.fingerprint != print_:
                raise JobFailedError(
                    f"{self.run_dir / MANIFEST_FILE} belongs to an unfinished run of "
                    f"job {self.config.job} with other settings; run with --fresh to "
                    "start afresh, or restore the settings to resume it"
                )
            entry = existing.latest
            logger.info(
                "resuming job %s from checkpoint %d (epoch %d, step %d)",
                self.config.job,
                entry.checkpoint_id,
                entry.epoch + 1,
                entry.step,
            )
            self._restore(entry)
            return existing
        manifest = Manifest(self.config.job, print_)
        self._checkpoint(manifest, 0, 0, [])
        return manifest

    def _checkpoint(
        self, manifest: Manifest, epoch: int, step: int, records: list[EpochRecord]
    ) -> None:
        """Two-phase commit: every party writes, then the manifest names it."""
        checkpoint_id = manifest.next_id()
        replies = self._everywhere(
            lambda c: c.save_checkpoint(self.config.job, checkpoint_id, epoch, step)
        )
        entry = CheckpointEntry(
            checkpoint_id, epoch, step, {n: r.digest for n, r in replies.items()}
        )
        manifest.checkpoints = [*manifest.checkpoints, entry][
            -self.config.keep_checkpoints :
        ]
        manifest.records = [dataclasses.asdict(r) for r in records]
        write_manifest(self.run_dir, manifest)
        keep = [e.checkpoint_id for e in manifest.checkpoints]
        self._everywhere(lambda c: c.commit_checkpoints(self.config.job, keep))

    def _restore(self, entry: CheckpointEntry) -> None:
        self._everywhere(
            lambda c: c.restore_checkpoint(
                self.config.job,
                entry.checkpoint_id,
                entry.epoch,
                entry.step,
                entry.digests[c.name],
            )
        )

    def _recover(self, manifest: Manifest, error: Exception) -> None:
        """Waits for every party, prepares the job again and restores the last
        committed checkpoint everywhere; retried until the attempts run out."""
        entry = manifest.latest
        assert entry is not None
        while True:
            self._recoveries += 1
            if self._recoveries > self.config.max_recoveries:
                raise JobFailedError(
                    f"job {self.config.job} failed {self._recoveries} times; last: "
                    f"{error}"
                ) from None
            logger.warning(
                "job %s: %s; recovering from checkpoint %d (epoch %d, step %d), "
                "attempt %d of %d",
                self.config.job,
                error,
                entry.checkpoint_id,
                entry.epoch + 1,
                entry.step,
                self._recoveries,
                self.config.max_recoveries,
            )
            started = time.monotonic()
            try:
                self._everywhere(lambda c: c.describe(self.config.recovery_timeout))
                handshake(self.config, self.clients)
                self._restore(entry)
            except SplitRecError as exc:
                error = exc
                time.sleep(min(2.0**self._recoveries, 30.0))
                continue
            logger.info(
                "job %s: recovered in %.1f s",
                self.config.job,
                time.monotonic() - started,
            )
            return

    # --- training -------------------------------------------------------------

    def _train(self, prepared: PreparedJob, manifest: Manifest) -> list[EpochRecord]:
        ledger = TrafficLedger(self.clients)
        steps = prepared.steps_per_epoch
        while True:
            entry = manifest.latest
            assert entry is not None
            records = [EpochRecord(**r) for r in manifest.records]
            try:
                for epoch in range(entry.epoch, self.config.epochs):
                    first = entry.step if epoch == entry.epoch else 0
                    ledger.begin()
                    started = time.monotonic()
                    train_metrics, steady = self._train_epoch(
                        epoch, first, steps, manifest, records
                    )
                    seconds = time.monotonic() - started
                    ledger.end()
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
                    self._checkpoint(manifest, epoch + 1, 0, records)
                break
            except (PeerError, JobFailedError) as exc:
                self._recover(manifest, exc)
        self._write_traffic(prepared, ledger)
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
    ) -> tuple[Metrics, float]:
        """Trains an epoch from step ``start`` in windows that end at checkpoint
        boundaries; returns its metrics and steady throughput."""
        size = self.config.steps_per_window or steps
        every = self.config.checkpoint_every
        bar = EpochProgress(epoch, self.config.epochs, steps)
        steady = SteadyRate()
        done_samples = 0

        def show(progress: control_pb2.StepProgress) -> None:
            steady.mark(done_samples + progress.samples)
            bar.update(
                progress.next_step,
                done_samples + progress.samples,
                progress.metrics.loss,
            )

        last = None
        first = start
        try:
            while first < steps:
                end = min(first + size, steps)
                if every:
                    end = min(end, (first // every + 1) * every)
                window = Window(
                    self.config.job, epoch, first, end - first, self.config.report_every
                )
                last = run_window(
                    self.clients,
                    self.config.label_party,
                    window,
                    show,
                    self.config.rpc_timeout,
                )
                done_samples += last.samples
                first = end
                if every and end % every == 0 and end < steps:
                    self._checkpoint(manifest, epoch, end, records)
        finally:
            bar.finish()
        if last is None or not last.has_metrics:
            raise JobFailedError(
                f"party {self.config.label_party} reported no training metrics"
            )
        return serde.metrics_from_proto(last.metrics), steady.rate()

    def _evaluate(self, epoch: int) -> Metrics:
        results = self._everywhere(
            lambda c: c.evaluate(self.config.job, epoch, "validation")
        )
        metrics = results[self.config.label_party][1]
        if metrics is None:
            raise JobFailedError(
                f"party {self.config.label_party} returned no validation metrics"
            )
        return metrics

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

    def _end_job(self) -> None:
        self._everywhere(lambda c: c.end_job(self.config.job))

    def _release(self) -> None:
        """After a failure: asks every reachable party to drop the job, best effort."""
        for client in self.clients.values():
            try:
                client.end_job(self.config.job, timeout=5.0)
            except SplitRecError as exc:
                logger.info("could not end the job at %s: %s", client.name, exc)

    def _everywhere(self, call: object) -> dict[str, object]:
        """Runs ``call(client)`` at every party at once; the first failure is raised."""
        with ThreadPoolExecutor(len(self.clients)) as pool:
            futures = {name: pool.submit(call, c) for name, c in self.clients.items()}
            return {name: f.result() for name, f in futures.items()}


def privacy_fields(
    privacy: PrivacySettings, prepared: PreparedJob, epoch: int
) -> dict[str, float]:
    """The history's privacy figures after 0-based ``epoch``."""
    fields: dict[str, float] = {}
    steps = prepared.steps_per_epoch
    spent = embedding_privacy(
        privacy,
        prepared.spec.batch_size,
        prepared.train_rows,
        (epoch + 1) * steps,
        steps,
    )
    if spent is not None:
        fields.update(dataclasses.asdict(spent))
    if privacy.label_dp:
        fields["label_epsilon"] = privacy.label_epsilon
    return fields


def summary_lines(result: JobResult) -> list[str]:
    """The final summary printed after a job."""
    last = result.records[-1]
    best = max(
        result.records, key=lambda r: -math.inf if math.isnan(r.val_auc) else r.val_auc
    )
    speed = sum(r.samples_per_second for r in result.records) / len(result.records)
    return [
        f"job finished: {len(result.records)} epochs",
        f"  final  val AUC {last.val_auc:.4f}  loss {last.val_loss:.4f}  "
        f"precision {last.val_precision:.4f}  recall {last.val_recall:.4f}",
        f"  best   val AUC {best.val_auc:.4f} (epoch {best.epoch})",
        f"  speed  {speed:,.0f} samples/s (mean over epochs)",
        f"  history {result.run_dir / 'history.json'}",
        f"  curves  {result.run_dir / 'curves.png'}",
    ]
