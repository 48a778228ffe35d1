"""Early stopping and best-version export decide from the records alone."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from splitrec.common.errors import ConfigError, JobFailedError
from splitrec.common.history import EpochRecord
from splitrec.coordinator.callbacks import Callbacks, FitInfo, TrainingControl
from splitrec.coordinator.early_stopping import EarlyStopping, ModelCheckpoint, Monitor
from tests.support import epoch_record


def _record(epoch: int, val_auc: float, val_loss: float = 0.5, tasks=None):
    return epoch_record(epoch, val_auc, val_loss=val_loss, tasks=tasks)


class _Parties:
    """What the coordinator would do at the parties, recorded."""

    def __init__(self) -> None:
        self.exported: list[str] = []
        self.restored: list[int] = []

    def control(self, records: list[EpochRecord]) -> TrainingControl:
        def export(version: str) -> str:
            self.exported.append(version)
            return version

        return TrainingControl(
            records, {}, export, self.restored.append, lambda: (0.0, 0.0)
        )


def _run(callback, aucs: list[float], epochs: int | None = None):
    """Feeds the epochs' validation AUCs to ``callback`` as the coordinator's
    loop does; returns the epochs trained, the parties' actions, the control."""
    parties, records = _Parties(), []
    control = parties.control(records)
    callback.on_fit_start(
        FitInfo("job", epochs or len(aucs), 10, 100, 10, Path("r"), False)
    )
    for epoch, auc in enumerate(aucs, start=1):
        records.append(_record(epoch, auc))
        callback.on_epoch_end(records[-1], control)
        if control.stop_requested:
            break
    control.model_epoch = records[-1].epoch
    callback.on_fit_end(control)
    return len(records), parties, control


def test_training_stops_after_patience_epochs_without_improvement():
    trained, parties, control = _run(
        EarlyStopping("val_auc", patience=2), [0.60, 0.70, 0.69, 0.68, 0.90]
    )
    assert trained == 4
    assert parties.restored == [2]
    assert control.model_epoch == 2
    assert "val_auc has not improved for 2 epochs" in control.stopped_by[0]


def test_an_improvement_resets_the_wait_and_the_last_epoch_needs_no_restore():
    trained, parties, _ = _run(EarlyStopping(patience=2), [0.6, 0.59, 0.7, 0.69, 0.8])
    assert trained == 5
    assert parties.restored == []


def test_without_restore_best_the_last_model_stays():
    _, parties, _ = _run(EarlyStopping(patience=1, restore_best=False), [0.7, 0.6])
    assert parties.restored == []


def test_min_delta_counts_only_real_improvements():
    trained, parties, _ = _run(
        EarlyStopping(patience=2, min_delta=0.01), [0.700, 0.705, 0.709, 0.8]
    )
    assert trained == 3 and parties.restored == [1]


def test_losses_are_minimized_and_mode_overrides():
    assert Monitor("val_loss").lower and Monitor("rating/train_loss").lower
    assert not Monitor("val_auc").lower and Monitor("val_auc", mode="min").lower


def test_an_undefined_figure_never_wins():
    monitor = Monitor("val_auc")
    records = [_record(1, math.nan), _record(2, 0.6), _record(3, math.nan)]
    assert monitor.best(records).epoch == 2


def test_the_best_checkpoint_is_kept_for_restoring():
    stopping = EarlyStopping(patience=3)
    records = [_record(1, 0.6), _record(2, 0.8), _record(3, 0.7)]
    assert stopping.checkpoints_needed(records) == {2}
    assert EarlyStopping(restore_best=False).checkpoints_needed(records) == set()


def test_a_resumed_run_decides_as_an_uninterrupted_one():
    """The decision after each epoch follows from the records, so a new
    callback (a new coordinator process) given the same records agrees."""
    aucs = [0.6, 0.7, 0.65, 0.64, 0.9]
    whole, _, _ = _run(EarlyStopping(patience=2), aucs)
    fresh = EarlyStopping(patience=2)
    parties = _Parties()
    records = [_record(e, a) for e, a in enumerate(aucs[:3], start=1)]
    control = parties.control(records)
    records.append(_record(4, aucs[3]))
    fresh.on_epoch_end(records[-1], control)
    assert control.stop_requested and whole == 4


def test_a_task_figure_is_read_from_the_tasks():
    tasks = {
        "liked": {
            "val_auc": 0.7,
            "val_loss": 0.4,
            "train_loss": 0.5,
            "train_auc": 0.6,
            "val_precision": 0.5,
            "val_recall": 0.5,
        }
    }
    record = _record(1, 0.6, tasks=tasks)
    assert Monitor("liked/val_auc").value(record) == 0.7
    with pytest.raises(JobFailedError, match="no task 'loved'"):
        Monitor("loved/val_auc").value(record)


def test_a_task_the_job_lacks_is_refused_when_its_tasks_are_known():
    info = FitInfo("job", 3, 10, 100, 10, Path("r"), True, tasks=("liked",))
    with pytest.raises(ConfigError, match="no task 'loved'"):
        EarlyStopping("loved/val_auc").on_fit_start(info)
    EarlyStopping("liked/val_auc").on_fit_start(info)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"monitor": "auc"}, "not a recorded figure"),
        ({"patience": 0}, "patience 0"),
        ({"patience": True}, "patience True"),
        ({"mode": "up"}, "mode 'up'"),
        ({"min_delta": -1.0}, "min_delta -1.0"),
    ],
)
def test_bad_settings_are_refused(settings: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        EarlyStopping(**settings)


def test_model_checkpoint_exports_each_improvement_once():
    saving = ModelCheckpoint("best-{epoch}", monitor="val_auc")
    _, parties, _ = _run(saving, [0.6, 0.7, 0.65, 0.8])
    assert parties.exported == ["best-1", "best-2", "best-4"]
    every = ModelCheckpoint("e{epoch}", best_only=False)
    _, parties, _ = _run(every, [0.6, 0.5])
    assert parties.exported == ["e1", "e2"]


def test_model_checkpoint_skips_a_version_exported_before_a_restart():
    saving = ModelCheckpoint("best-{epoch}")
    parties, records = _Parties(), [_record(1, 0.6)]
    control = parties.control(records)
    control.exports["best-1"] = {"epoch": 1}
    saving.on_epoch_end(records[0], control)
    assert parties.exported == []


def test_model_checkpoint_needs_the_epoch_in_its_version():
    with pytest.raises(ConfigError, match="put '\\{epoch\\}' in it"):
        ModelCheckpoint("best")


def test_a_failing_progress_callback_does_not_stop_training(caplog):
    class Broken(EarlyStopping):
        def on_progress(self, report):
            raise ValueError("broken")

    Callbacks([Broken()]).on_progress(object())
    assert "failed on a progress report" in caplog.text


def test_model_checkpoint_never_takes_an_earlier_runs_versions():
    saving = ModelCheckpoint("best-{epoch}")
    earlier = ("best-2", "best-x", "epoch-3")
    fresh = FitInfo("job", 3, 10, 100, 10, Path("r"), False, exports=earlier)
    with pytest.raises(ConfigError, match="best-2 from an earlier run"):
        saving.on_fit_start(fresh)
    # A resumed run's versions are its own, exported before the restart.
    resumed = FitInfo("job", 3, 10, 100, 10, Path("r"), True, exports=earlier)
    saving.on_fit_start(resumed)
    with pytest.raises(ConfigError, match="not a safe name"):
        ModelCheckpoint("../{epoch}")
