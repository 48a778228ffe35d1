"""History file, curves, progress display and the final summary."""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path

from splitrec.common.history import EpochRecord, plot_curves, write_history
from splitrec.coordinator.progress import EpochProgress
from splitrec.coordinator.records import summary_lines


def _records() -> list[EpochRecord]:
    return [
        EpochRecord(1, 0.65, 0.70, 0.62, 0.72, 0.71, 0.60, 9000.0, 9500.0, 10.0),
        EpochRecord(2, 0.55, 0.80, 0.60, 0.74, 0.70, 0.65, 11000.0, 11500.0, 8.0),
    ]


def test_history_holds_one_object_per_epoch_and_nan_as_null(tmp_path: Path):
    records = [
        *_records(),
        EpochRecord(3, 0.5, math.nan, 0.6, 0.7, 0.7, 0.6, 1.0, math.nan, 1.0),
    ]
    path = tmp_path / "job" / "history.json"
    write_history(path, records)
    rows = json.loads(path.read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1]["val_auc"] == 0.74
    assert rows[2]["train_auc"] is None
    assert rows[2]["steady_samples_per_second"] is None
    assert rows[0]["steady_samples_per_second"] == 9500.0
    assert not list(path.parent.glob("*.tmp"))


def test_curves_are_a_png(tmp_path: Path):
    path = tmp_path / "curves.png"
    plot_curves(path, _records())
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_progress_logs_plain_lines_when_not_a_terminal(caplog):
    stream = io.StringIO()
    progress = EpochProgress(1, 5, 10, stream=stream)
    with caplog.at_level(logging.INFO, logger="splitrec.coordinator.progress"):
        progress.update(10, 1280, float("nan"))
        progress.finish()
    assert stream.getvalue() == ""
    assert "epoch 2/5: 10/10 steps, " in caplog.text and "loss -" in caplog.text


def test_progress_of_several_tasks_shows_each_tasks_loss(caplog):
    progress = EpochProgress(0, 2, 10, stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger="splitrec.coordinator.progress"):
        progress.update(4, 512, 1.2, {"like": 0.7, "love": float("nan")})
    assert "loss 1.2000 like 0.7000 love -" in caplog.text


def test_summary_names_final_and_best_epoch(tmp_path: Path):
    lines = summary_lines(_records(), tmp_path)
    assert lines[0] == "job finished: 2 epochs"
    assert "final  val AUC 0.7400" in lines[1]
    assert "best   val AUC 0.7400 (epoch 2)" in lines[2]
    assert "10,000 samples/s" in lines[3]


def test_an_undefined_validation_auc_shows_as_not_available(tmp_path: Path):
    one_class = [
        EpochRecord(1, 0.65, 0.70, 0.62, math.nan, 0.0, 0.0, 9000.0, 9500.0, 10.0)
    ]
    lines = summary_lines(one_class, tmp_path)
    assert "final  val AUC n/a  loss 0.6200" in lines[1]
    assert lines[2] == "  best   val AUC n/a (the validation rows hold one class)"
    assert "nan" not in "".join(lines).lower()
    assert "auc n/a precision" in one_class[0].summary(1)
