"""Names that become parts of file paths.

A job's name travels in ``PrepareJob`` and every later call, and each party and
the coordinator build folders from it (``output_dir/<job>``, ``runs_dir/<job>``).
Party names become log file names. Such names must be one plain path component:
the pattern below is checked by the config readers and by every party on every
RPC that carries one; ``common.paths`` then checks every path built from one.
"""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = (
    "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit"
)

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
