"""A job's curves as TensorBoard event files, written as it trains.

Scalars reach the event files within ``FLUSH_SECONDS`` (tensorboardX's writer
thread: no TensorFlow in the coordinator's process), so ``tensorboard --logdir
runs`` follows the job live. Training windows go under ``train/`` (by global step),
epoch figures under ``epoch/`` and ``privacy/`` (by 1-based epoch) and the
bytes on the wire under ``wire/``. Undefined figures (NaN, an AUC over one
class) are left out. The log never fails a job: when writing fails it warns
once and writes nothing more.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from tensorboardX import SummaryWriter

from splitrec.common.closing import Closing
from splitrec.common.history import PRIVACY_METRICS, TASK_METRICS, EpochRecord
from splitrec.coordinator.callbacks import (
    Callback,
    FitInfo,
    ProgressReport,
    TrainingControl,
)

logger = logging.getLogger(__name__)

# How soon, in seconds, a written scalar is on disk for TensorBoard to show.
FLUSH_SECONDS = 2

# The record's figures, each under ``epoch/<figure>``; the privacy budget
# spent under ``privacy/<figure>``, when the job has one.
_EPOCH_FIGURES = (*TASK_METRICS, "samples_per_second")


class TensorBoardLog(Closing):
    """Scalars of one job in the event files of ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._writer: Any = None
        self._failures: tuple[type[BaseException], ...] = (OSError,)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # The writer's own thread puts events on disk within FLUSH_SECONDS.
            # A name of its own: two writers in one second would share one.
            self._writer = SummaryWriter(
                str(folder),
                flush_secs=FLUSH_SECONDS,
                filename_suffix=f".{uuid.uuid4().hex[:12]}",
            )
        except self._failures as error:
            self._give_up(error)

    @property
    def enabled(self) -> bool:
        """Whether the log still writes (False once closed or after a failure)."""
        return self._writer is not None

    def window(
        self,
        step: int,
        loss: float,
        task_losses: dict[str, float],
        samples_per_second: float,
    ) -> None:
        """A training report at global ``step`` (epoch * steps per epoch +
        step): the running loss, each task's by name, and the throughput."""
        values = {"train/loss": loss}
        values.update(
            {f"train/{name}/loss": value for name, value in task_losses.items()}
        )
        values["train/samples_per_second"] = samples_per_second
        self._write(step, values)

    def epoch(self, record: EpochRecord) -> None:
        """An epoch's figures at its 1-based number: training and validation
        metrics, throughput, each task's metrics and the privacy budget spent."""
        values: dict[str, float | None] = {
            f"epoch/{figure}": getattr(record, figure) for figure in _EPOCH_FIGURES
        }
        for name, figures in (record.tasks or {}).items():
            values.update(
                {f"epoch/{name}/{figure}": v for figure, v in figures.items()}
            )
        values.update(
            {f"privacy/{field}": getattr(record, field) for field in PRIVACY_METRICS}
        )
        self._write(record.epoch, values)

    def wire(self, epoch: int, peer_bytes: float, control_bytes: float) -> None:
        """The bytes on the wire from the job's start to the end of ``epoch``
        (1-based): between the parties, and the coordinator's control
        messages."""
        self._write(
            epoch, {"wire/peer_bytes": peer_bytes, "wire/control_bytes": control_bytes}
        )

    def close(self) -> None:
        """Flushes and closes the event file; later writes do nothing."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is None:
                return
            try:
                writer.close()
            except self._failures as error:
                logger.warning("TensorBoard log %s: %s", self.folder, error)

    def _write(self, step: int, values: dict[str, float | None]) -> None:
        with self._lock:
            if self._writer is None:
                return
            try:
                for tag, value in values.items():
                    if value is not None and math.isfinite(value):
                        self._writer.add_scalar(tag, float(value), int(step))
                self._writer.flush()
            except self._failures as error:
                self._give_up(error)

    def _give_up(self, error: BaseException) -> None:
        logger.warning(
            "TensorBoard log %s stopped, the job goes on without it: %s",
            self.folder,
            error,
        )
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(*self._failures):
                writer.close()


def keep_earlier(folder: Path) -> Path | None:
    """Moves the event files of an earlier run in ``folder`` into a subfolder
    ``earlier-<UTC time>`` (TensorBoard shows it as a run of its own), so
    that a fresh run's curves start alone; returns it (None: nothing to move)."""
    found = sorted(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []
    if not found:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(found[-1].stat().st_mtime))
    earlier = folder / f"earlier-{stamp}"
    try:
        earlier.mkdir(exist_ok=True)
        for path in found:
            path.rename(earlier / path.name)
    except OSError as error:
        logger.warning("TensorBoard log %s: earlier events stay: %s", folder, error)
        return None
    return earlier


class TensorBoard(Callback):
    """Writes a job's curves under ``<runs_dir>/<job>/tensorboard`` (or
    ``folder``) while it trains: each progress report's running loss and
    samples/s by global step; each epoch's figures, per task, the privacy
    budget spent and the bytes on the wire so far, by epoch."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._log: TensorBoardLog | None = None

    def on_fit_start(self, info: FitInfo) -> None:
        folder = self.folder or info.run_dir / "tensorboard"
        if not info.resumed:
            keep_earlier(folder)
        self._log = TensorBoardLog(folder)

    def on_progress(self, report: ProgressReport) -> None:
        if self._log is not None:
            self._log.window(
                report.global_step,
                report.loss,
                report.task_losses,
                report.samples_per_second,
            )

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        if self._log is not None:
            self._log.epoch(record)
            self._log.wire(record.epoch, *control.wire_bytes())

    def on_stop(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
