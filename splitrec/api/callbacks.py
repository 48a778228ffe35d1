"""Callbacks for ``Federation.fit``: those the coordinator runs for the
command line too (``EarlyStopping``, ``ModelCheckpoint``, ``TensorBoard``)
and two for notebooks and scripts (``CSVLogger``, ``LambdaCallback``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from splitrec.api.history import history_frame
from splitrec.common.atomic import write_atomically
from splitrec.common.history import EpochRecord
from splitrec.coordinator.callbacks import (
    Callback,
    FitInfo,
    ProgressReport,
    TrainingControl,
)
from splitrec.coordinator.early_stopping import EarlyStopping, ModelCheckpoint
from splitrec.coordinator.tensorboard_log import TensorBoard


class CSVLogger(Callback):
    """Keeps ``path`` a CSV of the run's history (one row per epoch, the
    columns of ``History.frame``), rewritten whole after every epoch: a
    resumed run's file holds its earlier epochs too."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, history_frame(control.records).to_csv())


class LambdaCallback(Callback):
    """A callback from plain functions: ``on_progress(report)`` gets every
    progress report, ``on_epoch_end(record)`` every epoch's figures,
    ``on_fit_start(info)`` and ``on_fit_end(records)`` the run's ends."""

    def __init__(
        self,
        on_progress: Callable[[ProgressReport], object] | None = None,
        on_epoch_end: Callable[[EpochRecord], object] | None = None,
        on_fit_start: Callable[[FitInfo], object] | None = None,
        on_fit_end: Callable[[list[EpochRecord]], object] | None = None,
    ) -> None:
        self._progress = on_progress
        self._epoch_end = on_epoch_end
        self._fit_start = on_fit_start
        self._fit_end = on_fit_end

    def on_fit_start(self, info: FitInfo) -> None:
        if self._fit_start is not None:
            self._fit_start(info)

    def on_progress(self, report: ProgressReport) -> None:
        if self._progress is not None:
            self._progress(report)

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        if self._epoch_end is not None:
            self._epoch_end(record)

    def on_fit_end(self, control: TrainingControl) -> None:
        if self._fit_end is not None:
            self._fit_end(list(control.records))


__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "FitInfo",
    "LambdaCallback",
    "ModelCheckpoint",
    "ProgressReport",
    "TensorBoard",
    "TrainingControl",
]
