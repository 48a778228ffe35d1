"""The helpers that compare runs bit for bit and check a difference again."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.divergence import RunState, agreed, difference, reproduces, vetted

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


def test_agreed_finds_the_twins_and_fails_without_any():
    odd = _state("odd", 2.0)
    assert agreed([odd, _state("a"), _state("b")], 2).folder == Path("a")
    with pytest.raises(AssertionError, match="no two runs agree"):
        agreed([odd, _state("a", 3.0), _state("b", 4.0)], 2)


def test_vetted_runs_a_third_only_when_the_first_two_differ():
    made = []

    def run(i: int) -> RunState:
        made.append(i)
        return _state(f"run-{i}", 2.0 if i == 0 else 1.0)

    with pytest.warns(UserWarning, match=r"did not reproduce.*\(run-0 astray\)"):
        kept = vetted(run, 2, explain=lambda a, b: f"{a.folder} astray")
    assert made == [0, 1, 2] and kept.folder == Path("run-1")
    made.clear()
    assert vetted(lambda i: made.append(i) or _state(f"run-{i}"), 2).folder == Path(
        "run-0"
    )
    assert made == [0, 1]


def test_a_difference_fails_only_when_it_comes_back():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reproduces(lambda i: None)  # nothing differs: no second attempt, no warning
    with pytest.warns(UserWarning, match="differed once"):
        reproduces(lambda i: "bits" if i == 0 else None)
    with pytest.raises(AssertionError, match="differs twice: bits 0; then bits 1"):
        reproduces(lambda i: f"bits {i}")
