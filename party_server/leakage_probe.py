"""Evaluation mode (``privacy.leakage_probe``): each party records what an
attacker in its place sees, written per training window for a harness to score.

- A feature party (``LeakageProbe``) records the label-inference attack scores
  of the rows it trains on. It never sees a label here; it only computes what
  it could from the gradients it legitimately receives.
- The label party (``ReceivedProbe``) records the hidden tensors it received
  in the job's last epoch for a fixed sample of the rows of two passes: the
  training forwards and the validation pass's forwards. That is what a
  feature-inference attack works from. It keeps them as they reached its fuse
  (after noise, decompression or whatever the job's protocol does to them):
  with embedding DP the training forwards carry noise, the validation pass's
  do not.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from splitrec.common.atomic import write_atomically
from splitrec.privacy.leakage import AttackScores


class _Recorder:
    """Parts recorded during one window or pass, written as one ``.npz`` file
    (atomically; a window replayed after a recovery overwrites its file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._parts: list[dict[str, np.ndarray]] = []

    def clear(self) -> None:
        """Forgets what a window or pass that did not finish recorded."""
        self._parts = []

    def _write(self, name: str) -> Path | None:
        """Writes the parts so far as ``folder/name`` and forgets them."""
        if not self._parts:
            return None
        keys = self._parts[0].keys()
        arrays = {k: np.concatenate([p[k] for p in self._parts]) for k in keys}
        self._parts = []
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path = self.folder / name
        write_atomically(path, buffer.getvalue())
        return path


def _read_parts(paths: list[Path]) -> list[dict[str, np.ndarray]]:
    """The arrays of each file, in the order given."""
    parts = []
    for path in paths:
        with np.load(path) as stored:
            parts.append({key: stored[key] for key in stored.files})
    return parts


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


class LeakageProbe(_Recorder):
    """Scores of one window; ``flush`` writes them to ``folder``."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self._attack = AttackScores()

    def record(self, step: int, ids: np.ndarray, gradient: np.ndarray) -> None:
        scores = self._attack.score(gradient)
        self._parts.append(
            {"id": ids, "step": np.full(ids.size, step, np.int64), **scores}
        )

    def flush(self, epoch: int, first_step: int, last_step: int) -> Path | None:
        """Writes the window's scores (one file per window)."""
        return self._write(
            f"epoch-{epoch + 1:04d}-steps-{first_step:06d}-{last_step:06d}.npz"
        )


# Most rows of a pass the label party's probe records (a sample beyond this).
RECEIVED_ROWS = 100_000
# Prefix of the arrays of ``ReceivedProbe`` files: one per tensor received.
RECEIVED = "received_"
# The passes whose tensors the label party's probe records: the training
# forwards (with embedding DP, noisy) and the validation pass's (clean).
RELEASES = ("train", "evaluate")


class ReceivedProbe(_Recorder):
    """The label party's records of one pass (``release``: ``train`` or
    ``evaluate``): the tensors received for a sample of ``limit`` of ``rows``
    (positions in the party's data), drawn from ``seed``, during ``epoch``
    (the last one)."""

    def __init__(
        self,
        folder: Path,
        release: str,
        rows: np.ndarray,
        num_rows: int,
        epoch: int,
        seed: int,
        limit: int = RECEIVED_ROWS,
    ) -> None:
        if release not in RELEASES:
            raise ValueError(f"release {release!r}: use one of {RELEASES}")
        super().__init__(folder)
        self.release = release
        self.epoch = epoch
        rng = np.random.default_rng([seed % 2**63, 0x5EC0, RELEASES.index(release)])
        self._chosen = np.zeros(num_rows, bool)
        self._chosen[rng.choice(rows, min(limit, rows.size), replace=False)] = True

    def record(
        self,
        epoch: int,
        rows: np.ndarray,
        ids: np.ndarray,
        received: Mapping[str, np.ndarray],
    ) -> None:
        """Keeps the sampled rows of one step: ``received`` maps a name (the
        sender, or what the tensor is, e.g. a sum) to the tensor, one row per
        row of ``rows``."""
        if epoch != self.epoch:
            return
        keep = self._chosen[rows]
        if keep.any():
            part = {"id": ids[keep]}
            for name, tensor in received.items():
                part[RECEIVED + name] = np.asarray(tensor)[keep]
            self._parts.append(part)

    def flush(self, epoch: int, first_step: int, last_step: int) -> Path | None:
        """Writes the records of a window or pass."""
        return self._write(
            f"received-{self.release}-epoch-{epoch + 1:04d}-steps-"
            f"{first_step:06d}-{last_step:06d}.npz"
        )


def read_received(folder: Path, release: str = "train") -> dict[str, np.ndarray]:
    """What the label party's probe recorded of one pass: ``id`` and one array
    per tensor received (``RECEIVED`` + its name), rows in the order they came."""
    parts = _read_parts(sorted(folder.glob(f"received-{release}-epoch-*-steps-*.npz")))
    if not parts:
        raise FileNotFoundError(
            f"{folder} holds no received tensors of the {release} pass "
            f"(received-{release}-epoch-*.npz)"
        )
    return _joined(parts)


def read_scores(folder: Path) -> dict[str, np.ndarray]:
    """Every recorded row of a probe folder: ``epoch``, ``id``, ``step`` and one
    array per attack."""
    paths = sorted(folder.glob("epoch-*-steps-*.npz"))
    parts = _read_parts(paths)
    if not parts:
        raise FileNotFoundError(f"{folder} holds no leakage scores (epoch-*.npz)")
    for path, part in zip(paths, parts, strict=True):
        epoch = int(path.name.split("-")[1])
        part["epoch"] = np.full(part["id"].size, epoch, np.int64)
    return _joined(parts)
