"""What a job tells the code that watches it, and how that code steers it.

A ``Callback`` is called by the coordinator's loop: once when training starts,
with every progress report the label party sends, after every epoch (with a
``TrainingControl`` that can end training, export the model the parties hold,
or send every party back to an earlier epoch), and once when training ends.
Callbacks run in the coordinator's process; they see what the coordinator
sees (aggregate figures), never a feature, label, hidden tensor or gradient.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitrec.common.history import EpochRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitInfo:
    """The run a callback watches."""

    job: str
    epochs: int
    steps_per_epoch: int
    train_rows: int
    validation_rows: int
    run_dir: Path
    # Whether the run goes on from an earlier one's checkpoint.
    resumed: bool
    # The epochs already recorded when training (re)starts.
    records: tuple[EpochRecord, ...] = ()
    # The tasks' names in a job of several tasks (empty for one label; None
    # until the first epoch's figures tell).
    tasks: tuple[str, ...] | None = None
    # The model versions the job's runs exported so far (earlier runs' too).
    exports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgressReport:
    """One progress report of the label party during an epoch."""

    epoch: int  # 1-based
    epochs: int
    step: int  # steps done in the epoch
    steps: int
    samples: int  # samples trained in the epoch so far
    loss: float  # the epoch's running loss
    task_losses: dict[str, float]
    samples_per_second: float

    @property
    def global_step(self) -> int:
        """Steps done since the job's first epoch."""
        return (self.epoch - 1) * self.steps + self.step


@dataclass
class TrainingControl:
    """What callbacks may do after an epoch; the coordinator provides the
    actions (they run at every party, as the job's own steps do)."""

    records: list[EpochRecord]
    exports: dict[str, dict]
    _export: Callable[[str], str]
    _restore: Callable[[int], None]
    _wire: Callable[[], tuple[float, float]]
    stop_requested: bool = False
    # The epoch whose model the parties hold (after a restore, an earlier one).
    model_epoch: int = 0
    stopped_by: list[str] = field(default_factory=list)

    def stop(self, reason: str = "") -> None:
        """Ends training after this epoch."""
        self.stop_requested = True
        if reason:
            self.stopped_by.append(reason)

    def export(self, version: str) -> str:
        """Every party exports the model it holds now under ``version``;
        returns the version."""
        return self._export(version)

    def restore(self, epoch: int) -> None:
        """Every party goes back to the checkpoint taken after ``epoch``
        (1-based); the final export and predictions then use that model."""
        self._restore(epoch)
        self.model_epoch = epoch

    def wire_bytes(self) -> tuple[float, float]:
        """Bytes sent so far: between parties, and between the coordinator and
        the parties."""
        return self._wire()


class Callback:
    """Override the hooks you need; each does nothing by default."""

    def on_fit_start(self, info: FitInfo) -> None:
        """Training starts (or goes on after a restart)."""

    def on_progress(self, report: ProgressReport) -> None:
        """A progress report, every ``report_every`` steps and at an epoch's end."""

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        """An epoch ended and was checkpointed; ``control`` steers what follows."""

    def on_fit_end(self, control: TrainingControl) -> None:
        """Training ended (the parties still hold the job); before the final
        export and predictions."""

    def on_stop(self) -> None:
        """The run ended, however it ended (a failure or a signal included):
        release what the callback holds open."""

    def checkpoints_needed(self, records: Sequence[EpochRecord]) -> set[int]:
        """Epochs whose checkpoints must be kept beyond ``checkpoint.keep``
        (the best one, to go back to)."""
        return set()


class Callbacks(Callback):
    """Several callbacks called in order; a failing one is logged and skipped
    for that call when it only watches (progress), and ends the run otherwise."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_fit_start(self, info: FitInfo) -> None:
        for callback in self.callbacks:
            callback.on_fit_start(info)

    def on_progress(self, report: ProgressReport) -> None:
        for callback in self.callbacks:
            try:
                callback.on_progress(report)
            except Exception:
                logger.exception(
                    "callback %s failed on a progress report", type(callback).__name__
                )

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(record, control)

    def on_fit_end(self, control: TrainingControl) -> None:
        for callback in self.callbacks:
            callback.on_fit_end(control)

    def on_stop(self) -> None:
        for callback in self.callbacks:
            try:
                callback.on_stop()
            except Exception:
                logger.exception("callback %s failed to stop", type(callback).__name__)

    def checkpoints_needed(self, records: Sequence[EpochRecord]) -> set[int]:
        needed: set[int] = set()
        for callback in self.callbacks:
            needed |= callback.checkpoints_needed(records)
        return needed
