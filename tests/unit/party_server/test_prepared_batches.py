"""A pass's inputs prepared on a background thread: the same batches, in
order, a bounded number ahead, and no thread left behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from splitrec.common.errors import JobStateError
from splitrec.models.features import EncodedFeatures, FeatureShape, pack
from splitrec.party_server.job_base import Pass

HANG = 30.0  # seconds: only to catch a hang


def _features(rows: int) -> EncodedFeatures:
    shapes = (FeatureShape("a", "index", 50), FeatureShape("b", "multi_hot", 3))
    arrays = {
        "a": np.arange(rows, dtype=np.int32) % 50,
        "b": (np.arange(rows * 3).reshape(rows, 3) % 2).astype(np.uint8),
    }
    return pack(shapes, arrays, rows)


def _threads() -> int:
    return sum(t.name == "prepare-batches" for t in threading.enumerate())


def _wait_for(condition: object) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_each_step_gets_the_inputs_of_its_rows_in_order():
    features = _features(100)
    batches = Pass(np.random.default_rng(1).permutation(100), 16)
    with batches.prepared(features.take, first=2) as ready:
        for step in range(2, batches.steps):
            got = ready.get(step)
            expected = features.take(batches.batch(step))
            assert got.step == step
            np.testing.assert_array_equal(got.rows, batches.batch(step))
            np.testing.assert_array_equal(got.inputs.indices, expected.indices)
            np.testing.assert_array_equal(got.inputs.dense, expected.dense)
        _wait_for(lambda: _threads() == 0)  # the last step is made: it ends


def test_it_prepares_at_most_ahead_steps_before_they_are_asked_for():
    features, taken = _features(100), []

    def take(rows: np.ndarray) -> object:
        taken.append(rows)
        return features.take(rows)

    with Pass(np.arange(100), 10).prepared(take, ahead=3) as ready:
        _wait_for(lambda: len(taken) == 3)
        time.sleep(0.05)  # room for a fourth, were it allowed
        assert len(taken) == 3
        ready.get(0)
        _wait_for(lambda: len(taken) == 4)
        time.sleep(0.05)
        assert len(taken) == 4


def test_closing_mid_pass_stops_the_thread():
    before = _threads()
    batches = Pass(np.arange(1000), 10)
    with batches.prepared(_features(1000).take) as ready:
        ready.get(0)
        assert _threads() == before + 1
    assert _threads() == before
    with pytest.raises(JobStateError, match="closed"):
        ready.get(1)


def test_a_failed_take_reaches_the_step_that_asks_after_the_ready_ones():
    features = _features(50)

    def take(rows: np.ndarray) -> object:
        if rows[0] >= 20:
            raise ValueError("disk gone")
        return features.take(rows)

    with Pass(np.arange(50), 10).prepared(take) as ready:
        assert ready.get(0).step == 0
        assert ready.get(1).step == 1
        with pytest.raises(JobStateError, match="step 2 failed: disk gone"):
            ready.get(2)
    assert _threads() == 0


def test_steps_are_asked_for_in_order_and_within_the_pass():
    batches = Pass(np.arange(30), 10)
    with batches.prepared(_features(30).take, end=2) as ready:
        with pytest.raises(JobStateError, match="step 1 asked for"):
            ready.get(1)
        ready.get(0)
        ready.get(1)
        with pytest.raises(JobStateError, match="step 2 asked for"):
            ready.get(2)
    with pytest.raises(ValueError, match="ahead >= 1"):
        batches.prepared(_features(30).take, ahead=0)
