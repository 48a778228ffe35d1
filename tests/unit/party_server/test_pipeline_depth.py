"""The auto pipeline's depth: from step timings, within the maximum, taken back
when deeper does not pay; and the plan that makes a resumed run repeat it."""

from __future__ import annotations

import json

import pytest

from splitrec.common.errors import ConfigError
from splitrec.common.pipeline_plan import (
    DECIDE_EVERY,
    plan_from_pairs,
    read_party_plans,
)
from splitrec.party_server.pipeline_depth import (
    DepthController,
    DepthPlan,
    StepTiming,
)


def _feed(
    controller: DepthController,
    network: float,
    label: float,
    feature: float,
    period: float,
    steps: int = DECIDE_EVERY,
    waited: bool = True,
) -> None:
    for _ in range(steps):
        controller.observe(StepTiming(network, waited, label, feature, period))


def test_no_estimate_keeps_depth_one():
    assert DepthController(16).decide() == 1


@pytest.mark.parametrize(
    ("network", "label", "feature", "expected"),
    [
        # 40 ms round trip, 5 ms steps: 9 steps of 5 ms cover 45 ms.
        (0.040, 0.005, 0.004, 10),
        (0.020, 0.004, 0.002, 7),
        # No network to hide: one step after another is as fast.
        (0.0, 0.004, 0.004, 2),
    ],
)
def test_the_depth_hides_the_round_trip(network, label, feature, expected):
    controller = DepthController(64)
    _feed(controller, network, label, feature, period=network + label + feature)
    assert controller.wanted() == expected
    assert controller.decide() == expected


def test_the_depth_stays_within_the_maximum():
    controller = DepthController(6)
    _feed(controller, 0.050, 0.002, 0.002, period=0.054)
    assert controller.decide() == 6


def test_a_shorter_round_trip_lowers_the_depth_even_when_gradients_wait():
    controller = DepthController(64)
    _feed(controller, 0.040, 0.005, 0.005, period=0.05)
    deep = controller.decide()
    # Deeper paid: the period fell to the step time; so one deeper is tried,
    _feed(controller, 0.040, 0.005, 0.005, period=0.005)
    assert controller.decide() == deep + 1
    # ... which did not pay, and is taken back.
    _feed(controller, 0.040, 0.005, 0.005, period=0.005)
    assert controller.decide() == deep
    # The link got faster; gradients are there before they are asked for,
    # so the round trips measured are upper bounds, and they are lower.
    _feed(controller, 0.004, 0.005, 0.005, period=0.005, steps=200, waited=False)
    assert controller.decide() < deep


def test_upper_bounds_above_the_estimate_do_not_raise_it():
    controller = DepthController(64)
    _feed(controller, 0.010, 0.005, 0.005, period=0.02)
    before = controller.network.value
    _feed(controller, 0.200, 0.005, 0.005, period=0.005, waited=False)
    assert controller.network.value == before


def test_a_deeper_pipeline_that_does_not_shorten_the_period_is_taken_back():
    controller = DepthController(64)
    # A bandwidth-bound link: the round trip looks long, but the period is
    # the link's, whatever the depth.
    _feed(controller, 0.030, 0.002, 0.002, period=0.012)
    trial = controller.decide()
    assert trial > 1
    _feed(controller, 0.060, 0.002, 0.002, period=0.012)
    assert controller.decide() == 1
    # ... and not tried again at once.
    _feed(controller, 0.060, 0.002, 0.002, period=0.012)
    assert controller.decide() == 1


def test_probes_go_deeper_while_it_pays_and_keep_the_deepest_that_paid():
    controller = DepthController(16)
    # Loopback: nothing measured to hide but the steps themselves (the
    # formula asks for 2), yet each deeper pipeline shortens the period.
    _feed(controller, 0.0, 0.004, 0.004, period=0.012)
    assert controller.decide() == 2
    for depth, period in [(3, 0.010), (4, 0.008), (5, 0.007)]:
        _feed(controller, 0.0, 0.004, 0.004, period=period)
        assert controller.decide() == depth
    # 5 did not beat 4 by 5 %: back to 4, which stays, whatever the formula.
    _feed(controller, 0.0, 0.004, 0.004, period=0.0078)
    assert controller.decide() == 4
    for _ in range(15):
        _feed(controller, 0.0, 0.004, 0.004, period=0.008)
        assert controller.decide() == 4
    # The hold is over: one deeper is tried again.
    _feed(controller, 0.0, 0.004, 0.004, period=0.008)
    assert controller.decide() == 5


def test_a_plan_is_kept_on_disk_and_taken_again_after_a_restart(tmp_path):
    path = tmp_path / "pipeline-depths.json"
    plan = DepthPlan(path)
    plan.record(0, 1)
    plan.record(DECIDE_EVERY, 5)
    assert json.loads(path.read_text()) == [[0, 1], [DECIDE_EVERY, 5]]
    again = DepthPlan(path)
    # A new job (not restored) does not take an earlier run's choices ...
    assert again.get(DECIDE_EVERY) is None
    # ... a restored one does; the depths given to the job win.
    given = DepthPlan(path, given={DECIDE_EVERY: 3})
    given.reload()
    assert (given.get(0), given.get(DECIDE_EVERY)) == (1, 3)


def test_plans_are_checked(tmp_path):
    assert plan_from_pairs([[0, 1], [64, 8]], "x") == {0: 1, 64: 8}
    for bad in ([[1, 2]], [[0, 0]], [[0, 65]], [[0]], [["0", 1]], {"0": 1}):
        with pytest.raises(ConfigError):
            plan_from_pairs(bad, "x")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"alice": [[0, 1], [32, 4]]}))
    assert read_party_plans(path) == {"alice": {0: 1, 32: 4}}
    path.write_text("[[0, 1]]")
    with pytest.raises(ConfigError, match="maps each feature party"):
        read_party_plans(path)
    path.write_text("{")
    with pytest.raises(ConfigError, match="not a pipeline plan"):
        read_party_plans(path)
