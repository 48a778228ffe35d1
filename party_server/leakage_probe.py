"""Evaluation mode of a feature party: the label-inference attack scores of the
rows it trains on, written per training window for a harness to score.

The party never sees a label here; it only records what an attacker in its
place could compute from the gradients it legitimately receives.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from common.atomic import write_atomically
from common.privacy.leakage import ATTACKS, AttackScores


class LeakageProbe:
    """Scores of one window; ``flush`` writes them to ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._attack = AttackScores()
        self._parts: list[dict[str, np.ndarray]] = []

    def clear(self) -> None:
        """Forgets scores of a window that did not finish."""
        self._parts = []

    def record(self, step: int, ids: np.ndarray, gradient: np.ndarray) -> None:
        scores = self._attack.score(gradient)
        self._parts.append(
            {"id": ids, "step": np.full(ids.size, step, np.int64), **scores}
        )

    def flush(self, epoch: int, first_step: int, last_step: int) -> Path | None:
        """Writes the window's scores (one file per window; a window replayed
        after a recovery overwrites its file)."""
        if not self._parts:
            return None
        arrays = {
            key: np.concatenate([p[key] for p in self._parts])
            for key in ("id", "step", *ATTACKS)
        }
        self._parts = []
        path = self.folder / (
            f"epoch-{epoch + 1:04d}-steps-{first_step:06d}-{last_step:06d}.npz"
        )
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomically(path, buffer.getvalue())
        return path


def read_scores(folder: Path) -> dict[str, np.ndarray]:
    """Every recorded row of a probe folder: ``epoch``, ``id``, ``step`` and one
    array per attack."""
    parts = []
    for path in sorted(folder.glob("epoch-*-steps-*.npz")):
        epoch = int(path.name.split("-")[1])
        with np.load(path) as stored:
            part = {key: stored[key] for key in stored.files}
        part["epoch"] = np.full(part["id"].size, epoch, np.int64)
        parts.append(part)
    if not parts:
        raise FileNotFoundError(f"{folder} holds no leakage scores (epoch-*.npz)")
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
