"""How many forwards a feature party keeps in flight under ``pipeline_size: auto``.

A forward sent at time t comes back as a gradient after the time it spends
between the parties (both ways, queues included) and the label party's step.
Meanwhile the feature party can work on other steps; to never wait, it needs

    depth = ceil((network + label step + feature step) / max(label step, feature step))

forwards in flight. ``DepthController`` keeps estimates of the three terms
(medians of the last steps' timings) and picks that depth at every control point
(every ``DECIDE_EVERY`` steps of the job), between 1 and the job's maximum.
A deeper pipeline that did not shorten the step period (the link's bandwidth or
a party's CPU is the bottleneck, not the round trip) is taken back, and no
deeper one is tried for a while: depth beyond what pays only adds staleness.

The formula counts only what the parties measure of a step; what they do not
(the hand-over between a stream's thread and the step loop, two processes
sharing cores) also wants hiding. So a deeper pipeline that paid is followed by
one deeper still at the next control point, a probe, and so on while each pays;
a depth a probe reached stays the least depth chosen, whatever the formula
says later (it was measured to pay; the formula's own choices still go down
when the link gets faster).

The choices are kept in a ``DepthPlan``: a resumed job takes the same depths
at the control points it had decided, so its steps repeat bit for bit; a plan
can also be given to a new run, which then repeats an earlier run's depths.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from splitrec.common.atomic import write_atomically
from splitrec.common.pipeline_plan import DECIDE_EVERY, read_plan

# A gradient that was there before it was asked for: the round trip measured
# for its step is an upper bound, not a measurement.
WAITED = 2e-4
# A deeper pipeline must shorten the period by this much to be kept.
_GAIN = 0.05
# Choices after a deeper pipeline did not pay before one is tried again.
_HOLD = 16


@dataclass(frozen=True)
class StepTiming:
    """One training step as a feature party saw it, in seconds."""

    # From sending the forward to receiving its gradient, less the time the
    # label party held it: what the two transfers and their queues took.
    network: float
    # The gradient arrived while this party waited for it (else it was
    # already there and ``network`` is an upper bound).
    waited: bool
    # The label party's compute for the step, and this party's.
    label: float
    feature: float
    # From the previous gradient received to this one (None for a window's
    # first step).
    period: float | None = None


class _Recent:
    """The median of the last ``size`` samples (``None`` before the first):
    steady under the odd pause a busy machine puts into one step."""

    def __init__(self, size: int) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, sample: float) -> None:
        self._samples.append(sample)

    @property
    def value(self) -> float | None:
        """The median, computed when asked for (not at every step's sample)."""
        return statistics.median(self._samples) if self._samples else None

    def mean(self) -> float | None:
        """The mean of the last samples: for periods, the rate a depth gave.
        (Gradients come in bursts under a pipeline: a median period tells
        the gap inside a burst, not how many steps an interval ran.)"""
        return statistics.fmean(self._samples) if self._samples else None


class DepthController:
    """Estimates from step timings and the depth they call for."""

    def __init__(self, maximum: int, window: int = DECIDE_EVERY) -> None:
        if maximum < 1:
            raise ValueError(f"the maximum depth must be at least 1, got {maximum}")
        self.maximum = maximum
        self.network = _Recent(window)
        self.label = _Recent(window)
        self.feature = _Recent(window)
        self.period = _Recent(window)
        self.depth = 1
        # (depth before, its period, whether a probe) while a deeper pipeline
        # is on trial.
        self._trial: tuple[int, float, bool] | None = None
        self._ceiling = maximum
        self._hold = 0
        # The last trial paid: try one deeper next.
        self._climbing = False
        # The deepest depth a probe found to pay: the least depth chosen.
        self._probed = 1

    def observe(self, timing: StepTiming) -> None:
        """Adds one step's timings. A round trip measured on a gradient that
        was already waiting is an upper bound: it counts as at most the
        current estimate."""
        network, current = max(0.0, timing.network), self.network.value
        if not timing.waited and current is not None:
            network = min(network, current)
        self.network.add(network)
        self.label.add(max(0.0, timing.label))
        self.feature.add(max(0.0, timing.feature))
        if timing.period is not None:
            self.period.add(max(0.0, timing.period))

    def follow(self, depth: int) -> None:
        """Takes a depth chosen before (a plan's): no trial is running."""
        self.depth, self._trial, self._climbing = depth, None, False

    def wanted(self) -> int | None:
        """The depth that hides the estimated round trip (None: no estimate)."""
        network, label, feature = (
            self.network.value,
            self.label.value,
            self.feature.value,
        )
        if network is None or label is None or feature is None:
            return None
        busiest = max(label, feature, 1e-6)
        return max(1, math.ceil((network + label + feature) / busiest))

    def decide(self) -> int:
        """The depth for the next control interval."""
        period = self.period.mean()
        if self._trial is not None and period is not None:
            before, before_period, probe = self._trial
            self._trial = None
            if period > (1 - _GAIN) * before_period:
                # Deeper did not pay: back, and no deeper for a while.
                self._ceiling, self._hold = before, _HOLD
                self.depth, self._climbing = before, False
                return self.depth
            self._climbing = True
            if probe:
                self._probed = self.depth
        if self._hold > 0:
            self._hold -= 1
            if self._hold == 0:
                # Time to look deeper again, from where it stands.
                self._ceiling, self._climbing = self.maximum, True
        wanted = self.wanted()
        if wanted is None:
            return self.depth
        chosen = max(wanted, self._probed)
        if self._climbing:
            chosen = max(chosen, self.depth + 1)
        chosen = min(chosen, self._ceiling, self.maximum)
        self._climbing = False
        if chosen > self.depth and period is not None:
            self._trial = (self.depth, period, chosen > wanted)
        self.depth = chosen
        return self.depth


class DepthPlan:
    """The depth chosen at each control point of a job (global step → depth).

    ``path`` keeps the choices (rewritten atomically at each one), so that a
    party that restarts finds them again; ``given`` are choices the job was
    started with (an earlier run's), followed wherever they name a step.
    """

    def __init__(self, path: Path, given: dict[int, int] | None = None) -> None:
        self.path = path
        self.given = dict(given or {})
        self.choices = dict(self.given)

    def reload(self) -> None:
        """Takes the choices the job's earlier steps made (a restored checkpoint
        repeats them), as kept in ``path``; the given ones still win."""
        kept = read_plan(self.path) if self.path.exists() else {}
        self.choices = {**kept, **self.given}

    def get(self, control_point: int) -> int | None:
        return self.choices.get(control_point)

    def record(self, control_point: int, depth: int) -> None:
        self.choices[control_point] = depth
        text = json.dumps(sorted(self.choices.items()))
        write_atomically(self.path, text + "\n")


def plan_file(folder: Path) -> Path:
    """Where a feature party keeps its job's plan."""
    return Path(folder) / "pipeline-depths.json"
