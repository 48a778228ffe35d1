"""Early stopping and best-version export: callbacks that judge each epoch by
one recorded figure.

Both decide from the records alone (the best epoch so far, the epochs since
it), never from state of their own: a job resumed after a crash, in another
coordinator process, decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence

from splitrec.common.errors import ConfigError, JobFailedError
from splitrec.common.history import (
    EpochRecord,
    metric_problem,
    metric_value,
    minimized,
)
from splitrec.common.names import name_problem
from splitrec.coordinator.callbacks import Callback, FitInfo, TrainingControl

logger = logging.getLogger(__name__)


class Monitor:
    """One recorded figure (``val_auc``, ``<task>/val_loss``, ...) and which
    way is better."""

    def __init__(self, name: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        found = metric_problem(name)
        if found is not None:
            raise ConfigError(f"monitor: {found}")
        if mode not in ("auto", "min", "max"):
            raise ConfigError(f"mode {mode!r}: use auto, min or max")
        if not (min_delta >= 0 and math.isfinite(min_delta)):
            raise ConfigError(f"min_delta {min_delta!r}: use a number >= 0")
        self.name = name
        self.lower = minimized(name) if mode == "auto" else mode == "min"
        self.min_delta = min_delta

    def check(self, info: FitInfo) -> None:
        """Refuses a task the job does not have, once its tasks are known (a
        resumed run; else the first epoch's figures tell)."""
        task = self.name.rpartition("/")[0]
        if task and info.tasks is not None and task not in info.tasks:
            raise ConfigError(
                f"monitor {self.name!r}: job {info.job} has no task {task!r} (its "
                f"tasks: {', '.join(info.tasks) or 'none, it has one label'})"
            )

    def value(self, record: EpochRecord) -> float:
        try:
            return metric_value(record, self.name)
        except KeyError as exc:
            raise JobFailedError(f"monitor {exc.args[0]}", fatal=True) from None

    def improves(self, value: float, best: float) -> bool:
        """Whether ``value`` beats ``best`` by more than ``min_delta`` (an
        undefined value never does; anything beats an undefined best)."""
        if math.isnan(value):
            return False
        if math.isnan(best):
            return True
        if self.lower:
            return value < best - self.min_delta
        return value > best + self.min_delta

    def best(self, records: Sequence[EpochRecord]) -> EpochRecord | None:
        """The first record of the best value (each later one must improve on
        it by more than ``min_delta``); None before any epoch."""
        found = None
        for record in records:
            if found is None or self.improves(self.value(record), self.value(found)):
                found = record
        return found


class EarlyStopping(Callback):
    """Ends training when ``monitor`` has not improved for ``patience``
    epochs. With ``restore_best``, every party then goes back to the
    checkpoint of the best epoch (kept for it whatever ``checkpoint.keep``
    says), so that the final export and predictions use that model."""

    def __init__(
        self,
        monitor: str = "val_auc",
        patience: int = 2,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"patience {patience!r}: use a whole number >= 1")
        self.monitor = Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best = restore_best
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None

    def on_fit_start(self, info: FitInfo) -> None:
        self.monitor.check(info)

    def epochs_without_improvement(self, records: Sequence[EpochRecord]) -> int:
        best = self.monitor.best(records)
        return records[-1].epoch - best.epoch if best is not None else 0

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        if math.isnan(self.monitor.value(record)):
            logger.warning(
                "early stopping: %s is undefined after epoch %d (a figure this job "
                "does not record, or an AUC over one class); it counts as no "
                "improvement",
                self.monitor.name,
                record.epoch,
            )
        waited = self.epochs_without_improvement(control.records)
        best = self.monitor.best(control.records)
        self.best_epoch = best.epoch if best is not None else None
        if waited >= self.patience:
            self.stopped_epoch = record.epoch
            control.stop(
                f"{self.monitor.name} has not improved for {waited} epochs (best "
                f"{self.monitor.value(best):.4f} after epoch {best.epoch})"
            )

    def on_fit_end(self, control: TrainingControl) -> None:
        best = self.monitor.best(control.records)
        if not self.restore_best or best is None:
            return
        self.best_epoch = best.epoch
        if best.epoch != control.model_epoch:
            logger.info(
                "early stopping: every party goes back to epoch %d (best %s %.4f)",
                best.epoch,
                self.monitor.name,
                self.monitor.value(best),
            )
            control.restore(best.epoch)

    def checkpoints_needed(self, records: Sequence[EpochRecord]) -> set[int]:
        if not self.restore_best:
            return set()
        best = self.monitor.best(records)
        return {best.epoch} if best is not None else set()


class ModelCheckpoint(Callback):
    """Every party exports its part of the model after each epoch that
    improves ``monitor`` (the first epoch included), as ``version`` with
    ``{epoch}`` filled in (``best-epoch-{epoch}``); with
    ``best_only=False``, after every epoch."""

    def __init__(
        self,
        version: str = "best-epoch-{epoch}",
        monitor: str = "val_auc",
        mode: str = "auto",
        min_delta: float = 0.0,
        best_only: bool = True,
    ) -> None:
        if "{epoch}" not in version:
            raise ConfigError(
                f"version {version!r}: put '{{epoch}}' in it, so that each "
                "exported version has a name of its own"
            )
        found = name_problem(version.replace("{epoch}", "1"))
        if found is not None:
            raise ConfigError(f"version {version!r}: a model version {found}")
        self.version = version
        self.monitor = Monitor(monitor, mode, min_delta)
        self.best_only = best_only
        self.exported: list[str] = []

    def on_fit_start(self, info: FitInfo) -> None:
        self.monitor.check(info)
        if info.resumed:
            return  # versions exported before the restart are this run's
        pattern = re.compile(
            "".join(
                r"\d+" if part == "{epoch}" else re.escape(part)
                for part in re.split(r"(\{epoch\})", self.version)
            )
        )
        taken = sorted(v for v in info.exports if pattern.fullmatch(v))
        if taken:
            raise ConfigError(
                f"ModelCheckpoint {self.version!r}: job {info.job} has model "
                f"versions {', '.join(taken)} from an earlier run, and a version "
                "is never overwritten; give this run's versions another name "
                "(for example 'run2-best-{epoch}')"
            )

    def on_epoch_end(self, record: EpochRecord, control: TrainingControl) -> None:
        if self.best_only and self.monitor.best(control.records) is not record:
            return
        version = self.version.format(epoch=record.epoch)
        if version in control.exports:
            return  # exported before a restart
        self.exported.append(control.export(version))
