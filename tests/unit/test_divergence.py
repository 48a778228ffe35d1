"""The helpers that compare runs bit for bit, with no second chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.divergence import RunState, assert_same, difference

HISTORY = [
    {
        "epoch": 1,
        "train_loss": 0.5,
        "train_auc": 0.7,
        "val_loss": 0.6,
        "val_auc": 0.65,
        "val_precision": 0.6,
        "val_recall": 0.5,
    }
]


def _state(name: str, weight: float = 1.0, score: float = 0.5) -> RunState:
    """Two checkpoints per party; the second holds ``weight`` and, at bob, a
    running score of ``score`` for the third row of the second batch."""
    checkpoints = {}
    for party in ("alice", "bob"):
        for k in (0, 1):
            arrays = {
                "position": np.array([0, 2 * k]),
                "model/w": np.array([1.0, weight if k else 1.0], np.float32),
            }
            if party == "bob":
                scores = np.full(4, 0.5, np.float32)
                scores[3] = score if k else 0.5
                arrays["metrics/scores"] = scores
            checkpoints[f"{party}/checkpoint-{k:08d}.npz"] = arrays
    return RunState(Path(name), checkpoints, HISTORY, {"peer": {"bytes": 10}})


def test_equal_runs_have_no_difference():
    assert difference(_state("a"), _state("b"), 2) is None


def test_the_first_differing_checkpoint_and_step_are_named():
    found = difference(
        _state("a"), _state("b", np.nextafter(np.float32(1), np.float32(2)), 0.6), 2
    )
    assert found is not None
    assert found.startswith("alice/checkpoint-00000001.npz model/w differs")
    assert "saved at epoch 0 step 2, scores first differ at step 1" in found


def test_metrics_and_traffic_are_compared_too():
    other = _state("b")
    other.history = [dict(HISTORY[0], val_auc=0.66)]
    assert "epoch 1 metrics differ" in str(difference(_state("a"), other, 2))
    other = _state("b")
    other.traffic = {"peer": {"bytes": 11}}
    assert "peer traffic differs" in str(difference(_state("a"), other, 2))


def test_a_missing_checkpoint_is_a_difference_unless_only_common_ones_count():
    other = _state("b")
    del other.checkpoints["alice/checkpoint-00000000.npz"]
    assert "holds checkpoints" in str(difference(_state("a"), other, 2))
    assert difference(_state("a"), other, 2, same_checkpoints=False) is None


def test_equal_runs_pass_without_an_explanation():
    def explain(a: RunState, b: RunState) -> str:
        raise AssertionError("equal runs need no explanation")

    assert_same(_state("a"), _state("b"), 2, explain=explain)


def test_any_difference_fails_at_once_naming_runs_checkpoint_and_step():
    explained = []

    def explain(a: RunState, b: RunState) -> str:
        explained.append((a.folder, b.folder))
        return "b went astray"

    one_ulp = np.nextafter(np.float32(1), np.float32(2))
    with pytest.raises(AssertionError) as failed:
        assert_same(_state("a"), _state("b", one_ulp, 0.6), 2, explain=explain)
    assert str(failed.value) == (
        "runs differ: alice/checkpoint-00000001.npz model/w differs (saved at "
        "epoch 0 step 2, scores first differ at step 1) between a and b "
        "(b went astray)"
    )
    assert explained == [(Path("a"), Path("b"))]  # one comparison, no rerun


def test_jobs_sharing_a_folder_are_named_by_job():
    other = RunState(Path("runs"), {}, HISTORY, {"peer": {"bytes": 11}}, "side-b")
    mine = RunState(Path("runs"), {}, HISTORY, {"peer": {"bytes": 10}}, "side-a")
    with pytest.raises(AssertionError, match="in job side-a in runs, .* in job side-b"):
        assert_same(mine, other, 2, explain=None)
