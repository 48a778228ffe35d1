"""Comparing finished runs of one job bit for bit.

The training steps are deterministic whatever the thread counts, denormal mode,
buffer alignment, call boundaries or scheduling (``splitrec.models.determinism``
removed the one thing that depended on scheduling: the order in which ``AddN``
added its inputs). So every test that compares runs of one job (the stress
test, the fault tests, jobs side by side) allows no difference at all and gives
no second chance: the first difference fails the test, naming both runs, the
checkpoint and the step where it was saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support import metrics

_NAME = re.compile(r"checkpoint-(\d+)\.npz")


@dataclass
class RunState:
    """What a finished run left: every party's checkpoints, history, traffic."""

    folder: Path
    checkpoints: dict[str, dict[str, np.ndarray]]  # "party/checkpoint-N.npz"
    history: list[dict]
    traffic: dict
    # The job's name, when runs of several jobs share the folder.
    job: str = ""

    def __str__(self) -> str:
        return f"job {self.job} in {self.folder}" if self.job else str(self.folder)


def run_state(
    folder: Path, job: str, parties: tuple[str, ...], *, named: bool = False
) -> RunState:
    runs = folder / "runs"
    checkpoints = {}
    for party in parties:
        for path in sorted((runs / party / job / "checkpoints").glob("*.npz")):
            with np.load(path) as stored:
                checkpoints[f"{party}/{path.name}"] = {
                    k: stored[k] for k in stored.files
                }
    history = json.loads((runs / job / "history.json").read_text())
    traffic = json.loads((runs / job / "traffic.json").read_text())
    return RunState(folder, checkpoints, history, traffic, job if named else "")


def _order(name: str) -> tuple[int, str]:
    party, file = name.split("/")
    match = _NAME.fullmatch(file)
    return (int(match.group(1)) if match else -1, party)


def _first_step(want: RunState, got: RunState, name: str, batch_size: int) -> str:
    """Where the running scores (held by the label party's checkpoint of the
    same id) first differ: the first step whose forward pass saw the change."""
    suffix = name.split("/")[1]
    for party_file, arrays in want.checkpoints.items():
        theirs = arrays.get("metrics/scores")
        ours = got.checkpoints.get(party_file, {}).get("metrics/scores")
        if party_file.endswith(suffix) and theirs is not None and ours is not None:
            rows = np.flatnonzero(theirs != ours) if theirs.shape == ours.shape else []
            if len(rows):
                return f", scores first differ at step {rows[0] // batch_size}"
    return ""


def difference(
    want: RunState, got: RunState, batch_size: int, *, same_checkpoints: bool = True
) -> str | None:
    """None when both runs hold the same bits, history and traffic; otherwise
    the first thing that differs. ``same_checkpoints=False`` compares only the
    checkpoints both runs hold (a resumed run may have pruned or lost some)."""
    if same_checkpoints and want.checkpoints.keys() != got.checkpoints.keys():
        return (
            f"{got} holds checkpoints {sorted(got.checkpoints)}, "
            f"{want} {sorted(want.checkpoints)}"
        )
    common = sorted(want.checkpoints.keys() & got.checkpoints.keys(), key=_order)
    for name in common:
        theirs, ours = want.checkpoints[name], got.checkpoints[name]
        if theirs.keys() != ours.keys():
            return f"{name} holds other arrays in {got}"
        for key, value in theirs.items():
            if not np.array_equal(value, ours[key]):
                epoch, step = (int(x) for x in ours.get("position", (-1, -1)))
                return (
                    f"{name} {key} differs (saved at epoch {epoch} step {step}"
                    f"{_first_step(want, got, name, batch_size)}) between "
                    f"{want} and {got}"
                )
    if [r["epoch"] for r in want.history] != [r["epoch"] for r in got.history]:
        return f"{got} trained other epochs than {want}"
    for theirs, ours in zip(want.history, got.history, strict=True):
        if metrics(theirs) != metrics(ours):
            return (
                f"epoch {ours['epoch']} metrics differ: {metrics(theirs)} in "
                f"{want}, {metrics(ours)} in {got}"
            )
    for part in ("peer", "control"):
        theirs, ours = want.traffic.get(part), got.traffic.get(part)
        if theirs != ours:
            return f"{part} traffic differs: {theirs} in {want}, {ours} in {got}"
    return None


def replayed(*states: RunState) -> str:
    """Whether each run's windows replay bit for bit in one process (see
    ``tests.replay``): the run that went astray is the one that does not."""
    from tests.replay import Replay

    verdicts = []
    for state in states:
        astray = Replay(state.folder).first_astray()
        verdicts.append(
            f"{state.folder.name}: "
            + (f"differs from its replay: {astray}" if astray else "replays exactly")
        )
    return "; ".join(verdicts)


def assert_same(
    want: RunState,
    got: RunState,
    batch_size: int,
    *,
    same_checkpoints: bool = True,
    explain: Callable[[RunState, RunState], str] | None = replayed,
) -> None:
    """Fails at the first thing in which ``got`` differs from ``want`` (see
    ``difference``); ``explain`` (a replay of each run by default) adds which
    of the two went astray."""
    found = difference(want, got, batch_size, same_checkpoints=same_checkpoints)
    if found is None:
        return
    why = f" ({explain(want, got)})" if explain is not None else ""
    raise AssertionError(f"runs differ: {found}{why}")
