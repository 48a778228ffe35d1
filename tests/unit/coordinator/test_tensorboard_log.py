"""The TensorBoard log, read back with TensorBoard's own reader."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from splitrec.common.history import EpochRecord
from splitrec.coordinator.callbacks import FitInfo, ProgressReport
from splitrec.coordinator.tensorboard_log import TensorBoard, TensorBoardLog


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> (step, value) of every scalar in the folder's event files."""
    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    reader.Reload()
    return {
        tag: [(event.step, event.value) for event in reader.Scalars(tag)]
        for tag in reader.Tags()["scalars"]
    }


def _close(found: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    """Same steps, and values equal within float32's precision."""
    if [s for s, _ in found] != [s for s, _ in expected]:
        return False
    pairs = zip(found, expected, strict=True)
    return all(math.isclose(a, b, rel_tol=1e-6) for (_, a), (_, b) in pairs)


def _records() -> list[EpochRecord]:
    plain = EpochRecord(1, 0.65, 0.70, 0.62, 0.72, 0.71, 0.60, 9000.0, 9500.0, 10.0)
    tasks = {
        "like": {
            "train_loss": 0.4,
            "train_auc": 0.81,
            "val_loss": 0.45,
            "val_auc": 0.79,
            "val_precision": 0.5,
            "val_recall": 0.25,
        },
        "love": {
            "train_loss": 0.3,
            "train_auc": math.nan,
            "val_loss": 0.35,
            "val_auc": math.nan,
            "val_precision": 0.0,
            "val_recall": 0.0,
        },
    }
    private = EpochRecord(
        2,
        0.55,
        0.80,
        0.60,
        0.74,
        0.70,
        0.65,
        11000.0,
        11500.0,
        8.0,
        epsilon=1.25,
        epsilon_per_row=3.5,
        delta=1e-5,
        label_epsilon=2.0,
        tasks=tasks,
    )
    return [plain, private]


def test_windows_epochs_and_wire_read_back(tmp_path: Path):
    folder = tmp_path / "job" / "tensorboard"
    with TensorBoardLog(folder) as log:
        log.window(5, 0.69, {"like": 0.5, "love": math.nan}, 1200.0)
        log.window(10, math.nan, {"like": 0.4, "love": 0.3}, 1500.0)
        first, second = _records()
        log.epoch(first)
        log.wire(1, 1.5e9, 2048)
        log.epoch(second)
        log.wire(2, 1.25e9, 4096)
    found = _scalars(folder)

    assert _close(found["train/loss"], [(5, 0.69)])
    assert _close(found["train/like/loss"], [(5, 0.5), (10, 0.4)])
    assert _close(found["train/love/loss"], [(10, 0.3)])
    assert _close(found["train/samples_per_second"], [(5, 1200.0), (10, 1500.0)])

    assert _close(found["epoch/train_loss"], [(1, 0.65), (2, 0.55)])
    assert _close(found["epoch/train_auc"], [(1, 0.70), (2, 0.80)])
    assert _close(found["epoch/val_loss"], [(1, 0.62), (2, 0.60)])
    assert _close(found["epoch/val_auc"], [(1, 0.72), (2, 0.74)])
    assert _close(found["epoch/val_precision"], [(1, 0.71), (2, 0.70)])
    assert _close(found["epoch/val_recall"], [(1, 0.60), (2, 0.65)])
    assert _close(found["epoch/samples_per_second"], [(1, 9000.0), (2, 11000.0)])
    assert _close(found["epoch/like/val_auc"], [(2, 0.79)])
    assert _close(found["epoch/like/val_recall"], [(2, 0.25)])
    assert _close(found["epoch/love/train_loss"], [(2, 0.3)])
    assert "epoch/love/val_auc" not in found and "epoch/love/train_auc" not in found
    assert _close(found["privacy/epsilon"], [(2, 1.25)])
    assert _close(found["privacy/epsilon_per_row"], [(2, 3.5)])
    assert _close(found["privacy/label_epsilon"], [(2, 2.0)])

    assert _close(found["wire/peer_bytes"], [(1, 1.5e9), (2, 1.25e9)])
    assert _close(found["wire/control_bytes"], [(1, 2048.0), (2, 4096.0)])

    task_tags = {
        f"epoch/{task}/{figure}"
        for task in ("like", "love")
        for figure in ("train_loss", "val_loss", "val_precision", "val_recall")
    } | {"epoch/like/train_auc", "epoch/like/val_auc"}
    assert set(found) == {
        "train/loss",
        "train/like/loss",
        "train/love/loss",
        "train/samples_per_second",
        "epoch/train_loss",
        "epoch/train_auc",
        "epoch/val_loss",
        "epoch/val_auc",
        "epoch/val_precision",
        "epoch/val_recall",
        "epoch/samples_per_second",
        "privacy/epsilon",
        "privacy/epsilon_per_row",
        "privacy/label_epsilon",
        "wire/peer_bytes",
        "wire/control_bytes",
        *task_tags,
    }


def _appears(folder: Path, tag: str, limit: float = 60.0) -> list[tuple[int, float]]:
    """The tag's scalars once the log's writer has put them on disk (it does
    within ``FLUSH_SECONDS``; ``limit`` only catches a writer that never does)."""
    deadline = time.monotonic() + limit
    while True:
        found = _scalars(folder).get(tag)
        if found or time.monotonic() > deadline:
            return found or []
        time.sleep(0.2)


def test_each_write_is_on_disk_while_the_job_runs(tmp_path: Path):
    log = TensorBoardLog(tmp_path)
    log.window(1, 0.7, {}, 100.0)
    assert _close(_appears(tmp_path, "train/loss"), [(1, 0.7)])
    log.epoch(_records()[0])
    assert _close(_appears(tmp_path, "epoch/val_auc"), [(1, 0.72)])
    log.close()
    log.close()
    log.window(2, 0.6, {}, 100.0)
    assert _close(_scalars(tmp_path)["train/loss"], [(1, 0.7)])
    assert not log.enabled


def test_a_folder_it_cannot_write_warns_once_and_fails_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="splitrec.coordinator"):
        log = TensorBoardLog(blocker / "tensorboard")
        log.window(1, 0.7, {"like": 0.5}, 100.0)
        log.epoch(_records()[1])
        log.wire(1, 10.0, 2.0)
        log.close()
    assert not log.enabled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "TensorBoard log" in warnings[0].getMessage()


def test_a_failing_write_disables_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    log = TensorBoardLog(tmp_path)
    log.window(1, 0.7, {}, 100.0)

    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log._writer, "flush", full_disk)
    with caplog.at_level(logging.WARNING, logger="splitrec.coordinator"):
        log.window(2, 0.6, {}, 100.0)
        log.window(3, 0.5, {}, 100.0)
        log.close()
    assert not log.enabled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left" in warnings[0].getMessage()


def _report(step: int) -> ProgressReport:
    return ProgressReport(1, 1, step, 10, 128 * step, 0.7, {}, 1000.0)


def test_a_fresh_run_keeps_an_earlier_runs_curves_apart(tmp_path: Path):

    def fit(resumed: bool) -> None:
        board = TensorBoard()
        board.on_fit_start(FitInfo("job", 1, 10, 100, 10, tmp_path, resumed))
        board.on_progress(_report(1))
        board.on_stop()

    fit(resumed=False)
    fit(resumed=True)  # a resumed run writes on in the same folder
    folder = tmp_path / "tensorboard"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2
    fit(resumed=False)
    earlier = [p for p in folder.iterdir() if p.is_dir()]
    assert len(earlier) == 1 and earlier[0].name.startswith("earlier-")
    assert len(list(earlier[0].glob("events.out.tfevents.*"))) == 2
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
