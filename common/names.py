"""Names that become parts of file paths.

A job's name travels in ``PrepareJob`` and every later call, and each party and
the coordinator build folders from it (``output_dir/<job>``, ``runs_dir/<job>``).
Party names become log file names. Such names must be one plain path component:
the pattern below is checked by the config readers and by every party on every
RPC that carries one; ``splitrec.common.paths`` then checks every path built from one.

A scoring run (``coordinator predict``) is named by the job, the model version
and the dataset it scores, joined by ``+``, a character no name may hold. So
no job name is ever a scoring run's name (their folders, locks, holds and
files stay apart, whatever users name their jobs), and two scoring runs share
a name only when they score the same dataset with the same version.
"""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = (
    "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit"
)

SCORING_JOINER = "+"

# Checkpoint files are named checkpoint-NNNNNNNN.npz: ids have at most 8 digits.
MAX_CHECKPOINT_ID = 99_999_999


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a job or party name (``None``: it can)."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if NAME_PATTERN.fullmatch(value):
        return None
    shown = value if len(value) <= 80 else value[:77] + "..."
    return f"{shown!r} is not a safe name: use {NAME_RULE}"


def checkpoint_id_problem(checkpoint_id: int) -> str | None:
    """Why ``checkpoint_id`` cannot name a checkpoint file (``None``: it can)."""
    if 0 <= checkpoint_id <= MAX_CHECKPOINT_ID:
        return None
    return f"checkpoint id {checkpoint_id} is outside 0..{MAX_CHECKPOINT_ID}"


def scoring_run_name(job: str, version: str, dataset: str) -> str:
    """The name of the scoring run of ``dataset`` with ``version`` of ``job``."""
    return SCORING_JOINER.join((job, version, dataset))


def run_name_problem(run: str, scoring: tuple[str, str, str] | None) -> str | None:
    """Why ``run`` cannot name a run (``None``: it can): a training job's run
    (``scoring`` is ``None``) is named by a safe name, a scoring run by
    ``scoring_run_name`` of its (job, version, dataset)."""
    if scoring is None:
        problem = name_problem(run)
        if problem is not None and isinstance(run, str) and SCORING_JOINER in run:
            return f"{problem} ('{SCORING_JOINER}' marks the name of a scoring run)"
        return problem
    for what, value in zip(("job", "version", "dataset"), scoring, strict=True):
        problem = name_problem(value)
        if problem is not None:
            return f"the scored {what}: {problem}"
    expected = scoring_run_name(*scoring)
    if run != expected:
        return f"{run!r} is not the name of this scoring run: {expected!r}"
    return None


def any_run_name_problem(run: str) -> str | None:
    """Why ``run`` is neither a job's name nor a scoring run's (``None``: it is
    one of them)."""
    parts = run.split(SCORING_JOINER) if isinstance(run, str) else []
    if len(parts) == 3:
        return run_name_problem(run, (parts[0], parts[1], parts[2]))
    return run_name_problem(run, None)
