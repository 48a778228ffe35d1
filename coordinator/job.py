"""Drives one job from handshake to history: the coordinator's main loop."""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common import serde
from common.config import JobConfig
from common.errors import JobFailedError, SplitRecError
from common.history import EpochRecord, plot_curves, write_history
from common.metrics import Metrics
from common.throughput import SteadyRate
from common.tls import load_credentials
from coordinator.client import PartyClient
from coordinator.handshake import PreparedJob, handshake
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

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.run_dir = config.runs_dir / config.job
        credentials = load_credentials(config.tls)
        self.clients = {
            p.name: PartyClient(
                p.name, p.address, config.rpc_timeout, credentials, p.expected_identity
            )
            for p in config.parties
        }

    def run(self) -> JobResult:
        try:
            prepared = handshake(self.config, self.clients)
            logger.info(
                "job %s: %d training rows, %d validation rows, %d steps per epoch",
                self.config.job,
                prepared.train_rows,
                prepared.validation_rows,
                prepared.steps_per_epoch,
            )
            records = self._train(prepared)
            predicted = self._predict()
            self._end_job()
        except BaseException:
            self._release()
            raise
        finally:
            for client in self.clients.values():
                client.close()
        plot_curves(self.run_dir / "curves.png", records)
        return JobResult(records, self.run_dir, predicted)

    def _train(self, prepared: PreparedJob) -> list[EpochRecord]:
        records: list[EpochRecord] = []
        ledger = TrafficLedger(self.clients)
        for epoch in range(self.config.epochs):
            ledger.begin()
            started = time.monotonic()
            train_metrics, steady = self._train_epoch(epoch, prepared.steps_per_epoch)
            seconds = time.monotonic() - started
            ledger.end()
            val = self._evaluate(epoch)
            record = EpochRecord.of(
                epoch, train_metrics, val, prepared.train_rows, seconds, steady
            )
            records.append(record)
            write_history(self.run_dir / "history.json", records)
            logger.info("%s", record.summary(self.config.epochs))
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

    def _train_epoch(self, epoch: int, steps: int) -> tuple[Metrics, float]:
        """Trains one epoch in windows; returns its metrics and steady throughput."""
        size = self.config.steps_per_window or steps
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
        try:
            for first in range(0, steps, size):
                window = Window(
                    self.config.job,
                    epoch,
                    first,
                    min(size, steps - first),
                    self.config.report_every,
                )
                last = run_window(
                    self.clients,
                    self.config.label_party,
                    window,
                    show,
                    self.config.rpc_timeout,
                )
                done_samples += last.samples
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
