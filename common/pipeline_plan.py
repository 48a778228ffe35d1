"""A pipeline plan: the depth a feature party takes at each control point.

Under ``pipeline_size: auto`` a feature party chooses its pipeline's depth
every ``DECIDE_EVERY`` steps of the job and keeps the choices as a JSON list of
``[global step, depth]`` pairs. Given back to a job (``strategy.pipeline_plan``:
a file mapping each feature party to its list), the choices are taken instead
of made, so the run repeats the earlier one's depths.
"""

from __future__ import annotations

import json
from pathlib import Path

from splitrec.common.errors import ConfigError

# Steps between two depth choices.
DECIDE_EVERY = 32
MAX_DEPTH = 64


def read_plan(path: Path) -> dict[int, int]:
    """A plan file: a JSON list of ``[global step, depth]`` pairs."""
    try:
        pairs = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a pipeline plan: {exc}") from None
    return plan_from_pairs(pairs, str(path))


def plan_from_pairs(pairs: object, source: str) -> dict[int, int]:
    """``[[step, depth], ...]`` checked: steps at control points, depths ≥ 1."""
    if not isinstance(pairs, list):
        raise ConfigError(f"{source}: a pipeline plan is a list of [step, depth]")
    plan = {}
    for index, pair in enumerate(pairs):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        ):
            raise ConfigError(
                f"{source}: entry {index} is {pair!r}; each is [step, depth]"
            )
        step, depth = pair
        if step < 0 or step % DECIDE_EVERY or not 1 <= depth <= MAX_DEPTH:
            raise ConfigError(
                f"{source}: entry {index} {pair!r}: the step must be a multiple "
                f"of {DECIDE_EVERY} and the depth in [1, {MAX_DEPTH}]"
            )
        plan[step] = depth
    return plan


def read_party_plans(path: Path) -> dict[str, dict[int, int]]:
    """A job's plan file: ``{party: [[step, depth], ...]}``."""
    try:
        plans = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a pipeline plan: {exc}") from None
    if not isinstance(plans, dict):
        raise ConfigError(
            f"{path}: a pipeline plan maps each feature party to its list of "
            "[step, depth]"
        )
    return {
        str(party): plan_from_pairs(pairs, f"{path}: {party}")
        for party, pairs in plans.items()
    }
