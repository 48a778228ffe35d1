"""Strategies for parties far apart, on real party servers: an auto pipeline
over a shaped link and the plan that repeats it, weight prediction, and the
async strategy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from splitrec.bench.shaper import LinkShape, Shaper
from splitrec.party_server.pipeline_depth import plan_file
from tests.support import (
    party_status,
    running_parties,
    train_first_epoch,
    write_configs,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _weights(alice) -> list[np.ndarray]:
    return [v.numpy().copy() for v in alice.step.model.trainable_variables]


def _train(files, **strategy) -> tuple[float, object]:
    files.edit("job", batch_size=128, strategy=strategy)
    with running_parties(files) as parties:
        return train_first_epoch(parties, files)


@contextmanager
def _shaped(files, rtt_ms: float) -> Iterator[dict]:
    """The parties with alice's link to bob through a shaper of ``rtt_ms``."""
    shapers: list[Shaper] = []

    def through_shaper(name: str) -> None:
        if name == "alice":
            bob = files.read("bob")["listen"]
            shapers.append(Shaper(bob, up=LinkShape.from_round_trip(rtt_ms)).start())
            files.point_at("alice", "bob", shapers[-1].address)

    try:
        with running_parties(files, before=through_shaper) as parties:
            yield parties
    finally:
        for shaper in shapers:
            shaper.stop()


def test_auto_depth_follows_a_shaped_round_trip_and_its_plan_repeats_the_run(
    party_files,
):
    strategy = {"pipeline_size": "auto", "max_pipeline_size": 12, "warmup_steps": 32}
    _, near = _train(party_files, **strategy)
    near_depths = dict(near._plan.choices)

    party_files.edit("job", strategy=strategy)
    with _shaped(party_files, rtt_ms=40) as parties:
        _, far = train_first_epoch(parties, party_files)
        status = party_status(f"127.0.0.1:{parties['alice'].port}")
    far_depths = dict(far._plan.choices)
    # The round trip alice measured is the shaper's (and what the machine adds).
    assert far._controller.network.value >= 0.035
    assert far._controller.network.value < 0.2
    # Far apart, alice keeps more forwards in flight than next door.
    assert max(far_depths.values()) > max(near_depths.values())
    assert max(far_depths.values()) >= 3
    assert all(1 <= d <= 12 for d in far_depths.values())
    assert far.status.in_flight_peak == max(far_depths.values())
    # What the status RPC shows of it.
    assert status.in_flight_peak == far.status.in_flight_peak
    assert status.pipeline_depth == far_depths[max(far_depths)]
    # Warm-up ran one step at a time: its control point is the first choice.
    assert min(far_depths) == 32

    # The choices were kept, as the plan a restored checkpoint takes again
    # (test_recovery repeats a run from it).
    kept = json.loads(plan_file(far.folder).read_text())
    assert dict(map(tuple, kept)) == far_depths


@pytest.fixture(scope="module")
def exact(small_data, tmp_path_factory) -> tuple[float, list[np.ndarray]]:
    """The exact run (pipeline size 1): validation AUC and alice's weights."""
    files = write_configs(tmp_path_factory.mktemp("exact"), small_data)
    auc, alice = _train(files, pipeline_size=1, warmup_steps=0)
    return auc, _weights(alice)


def test_weight_prediction_is_the_plain_run_without_staleness(party_files, exact):
    plain_auc, plain_weights = exact
    predicted_auc, predicted = _train(
        party_files, pipeline_size=1, warmup_steps=0, compensation="predict"
    )
    assert predicted_auc == plain_auc
    for a, b in zip(plain_weights, _weights(predicted), strict=True):
        np.testing.assert_array_equal(a, b)

    # With stale forwards it changes what they see, not what is learnt.
    stale_auc, stale = _train(party_files, pipeline_size=6, warmup_steps=0)
    fixed_auc, fixed = _train(
        party_files, pipeline_size=6, warmup_steps=0, compensation="predict"
    )
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(_weights(stale), _weights(fixed), strict=True)
    )
    assert abs(fixed_auc - plain_auc) < 0.02
    assert fixed_auc > 0.6


def test_async_updates_once_per_group_without_waiting_in_between(party_files, exact):
    # With a compressor, whose kept positions each gradient must follow.
    party_files.edit("job", compression={"method": "topk_int8", "ratio": 0.5})
    async_auc, alice = _train(
        party_files, name="async", local_steps=4, pipeline_size=1, warmup_steps=0
    )
    # A group's four forwards left before any of their gradients came back.
    assert alice.status.in_flight_peak == 4
    assert async_auc > 0.6
    assert abs(async_auc - exact[0]) < 0.03
