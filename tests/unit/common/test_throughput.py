"""SteadyRate counts samples per second from its first mark on."""

from __future__ import annotations

import math

from splitrec.common import throughput
from splitrec.common.throughput import SteadyRate


def test_rate_leaves_out_what_came_before_the_first_mark(monkeypatch):
    clock = iter([10.0, 12.0, 14.0])
    monkeypatch.setattr(throughput.time, "monotonic", lambda: next(clock))
    rate = SteadyRate()
    rate.mark(1000)  # the first 1000 samples (and their tracing) are left out
    rate.mark(2000)
    rate.mark(5000)
    assert rate.rate() == (5000 - 1000) / (14.0 - 10.0)


def test_rate_is_nan_with_fewer_than_two_marks():
    rate = SteadyRate()
    assert math.isnan(rate.rate())
    rate.mark(10)
    assert math.isnan(rate.rate())
