"""A job of several tasks end to end: MMoE predicting like (Rating > 3) and love
(Rating = 5) on the reference column split, with real party processes and the
coordinator; its records carry every task, and privacy that protects one label
asks which."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.support import (
    HISTORY_METRICS,
    run_demo,
    write_configs,
)

pytestmark = pytest.mark.slow

TASK_KEYS = set(HISTORY_METRICS)


def test_a_two_task_job_records_and_scores_every_task(small_data, tmp_path):
    files = write_configs(tmp_path, small_data, layout="two-tasks")
    files.edit("job", epochs=2, batch_size=256)

    result = run_demo(files)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "task like: val AUC" in result.stdout
    assert "task love: val AUC" in result.stdout
    run_dir = tmp_path / "runs" / "mmoe-ml1m"
    history = json.loads((run_dir / "history.json").read_text())
    for row in history:
        assert list(row["tasks"]) == ["like", "love"]
        assert all(set(figures) == TASK_KEYS for figures in row["tasks"].values())
        # The job's loss is the tasks' weighted sum (weights 1 and 1).
        total = sum(f["train_loss"] for f in row["tasks"].values())
        assert row["train_loss"] == pytest.approx(total, rel=1e-5)
        mean = np.mean([f["val_auc"] for f in row["tasks"].values()])
        assert row["val_auc"] == pytest.approx(mean)
    last = history[-1]["tasks"]
    assert last["like"]["val_auc"] > 0.6 and last["love"]["val_auc"] > 0.6
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"

    predictions = tmp_path / "runs" / "bob" / "mmoe-ml1m" / "predictions-validation.csv"
    with predictions.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ID", "score_like", "score_love"]
    scores = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert scores.shape == (len(rows) - 1, 2) and len(rows) > 100
    assert ((scores > 0) & (scores < 1)).all()
    # Loving a movie is rarer than liking it, and the model has learnt so.
    assert scores[:, 1].mean() < scores[:, 0].mean()


@pytest.mark.parametrize(
    ("privacy", "expected"),
    [
        (
            {"gradient_defense": {"method": "iso", "scale": 1.0}},
            "gradient defense iso protect one binary label, and this job has 2 "
            "tasks (like, love); name the one to protect with privacy.task",
        ),
        (
            {"label_dp": {"epsilon": 2.0}, "task": "hate"},
            "privacy.task 'hate' is not a task of this job; its tasks are "
            "['like', 'love']",
        ),
    ],
)
def test_privacy_of_one_label_is_refused_without_its_task(
    small_data, tmp_path, privacy, expected
):
    files = write_configs(tmp_path, small_data, layout="two-tasks")
    files.edit("job", epochs=1, privacy=privacy)

    result = run_demo(files, timeout=300)

    assert result.returncode != 0
    assert expected in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / "mmoe-ml1m" / "history.json").exists()


def test_privacy_protects_the_named_task(small_data, tmp_path):
    files = write_configs(tmp_path, small_data, layout="two-tasks")
    privacy = {
        "label_dp": {"epsilon": 3.0},
        "gradient_defense": {"method": "max_norm"},
        "task": "love",
    }
    files.edit("job", epochs=1, batch_size=256, privacy=privacy)

    result = run_demo(files, timeout=300)

    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads((tmp_path / "runs" / "mmoe-ml1m" / "history.json").read_text())[0]
    assert row["label_epsilon"] == 3.0
    assert list(row["tasks"]) == ["like", "love"]
