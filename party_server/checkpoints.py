"""A party's checkpoints of one job: written atomically, verified by digest.

Each checkpoint is one ``.npz`` file in ``output_dir/<job>/checkpoints/``: the
job's model and optimizer variables, its position (epoch and next step) and, at
the label party, the epoch's metric accumulator. Batch order is derived from
``(seed, epoch)``, so the position is the whole random state of training.
The file is written to a temporary name, synced and renamed: a crash leaves the
previous checkpoints as they were.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from pathlib import Path

import numpy as np

from common.atomic import write_atomically
from common.errors import (
    CheckpointLostError,
    CheckpointMismatchError,
    InvalidMessageError,
)
from common.names import checkpoint_id_problem

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d{8})\.npz$")


class CheckpointStore:
    """The checkpoint files of one job at one party."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, checkpoint_id: int) -> Path:
        """The file of a checkpoint; ids outside the file-name pattern are refused
        (``INVALID_ARGUMENT``), so pruning finds every file a job writes."""
        problem = checkpoint_id_problem(checkpoint_id)
        if problem is not None:
            raise InvalidMessageError(problem)
        return self.folder / f"checkpoint-{checkpoint_id:08d}.npz"

    def save(
        self, checkpoint_id: int, arrays: dict[str, np.ndarray]
    ) -> tuple[str, int]:
        """Writes the arrays; returns the file's SHA-256 and size."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
        write_atomically(self.path(checkpoint_id), payload, mode=0o600)
        return hashlib.sha256(payload).hexdigest(), len(payload)

    def load(self, checkpoint_id: int, digest: str) -> dict[str, np.ndarray]:
        """The arrays of a checkpoint whose file still has ``digest``."""
        path = self.path(checkpoint_id)
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointLostError(
                f"checkpoint {checkpoint_id} is not at {path}; the party's output_dir "
                "must be kept between restarts"
            ) from None
        except OSError as exc:
            raise CheckpointLostError(f"cannot read checkpoint {path}: {exc}") from None
        found = hashlib.sha256(payload).hexdigest()
        if digest and found != digest:
            raise CheckpointLostError(
                f"checkpoint {path} has digest {found[:12]}…, the committed one "
                f"{digest[:12]}…; the file changed since it was saved"
            )
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointLostError(
                f"checkpoint {path} is not a readable checkpoint file: {exc}"
            ) from None

    def keep_only(self, keep: set[int]) -> None:
        """Deletes every checkpoint not in ``keep``."""
        for checkpoint_id in keep:
            problem = checkpoint_id_problem(checkpoint_id)
            if problem is not None:
                raise InvalidMessageError(problem)
        if not self.folder.exists():
            return
        for path in self.folder.iterdir():
            match = _NAME.match(path.name)
            if match and int(match.group(1)) not in keep:
                path.unlink(missing_ok=True)
                logger.info("removed checkpoint %s", path)


def variables_state(prefix: str, variables: list) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i}": v.numpy() for i, v in enumerate(variables)}


def assign_states(
    groups: dict[str, list], arrays: dict[str, np.ndarray], source: str
) -> None:
    """Assigns each group's ``prefix/i`` arrays to its variables.

    Every group is checked first (count and shapes), so a checkpoint that does
    not fit changes nothing.
    """
    plan = []
    for prefix, variables in groups.items():
        stored = sorted(
            (int(k.split("/", 1)[1]), k) for k in arrays if k.startswith(prefix + "/")
        )
        if len(stored) != len(variables):
            raise CheckpointMismatchError(
                f"{source} holds {len(stored)} {prefix} variables, this job has "
                f"{len(variables)}; it was saved by another model"
            )
        for (_, key), variable in zip(stored, variables, strict=True):
            if tuple(arrays[key].shape) != tuple(variable.shape):
                raise CheckpointMismatchError(
                    f"{source}: {prefix} variable {variable.path} has shape "
                    f"{tuple(variable.shape)} here, {arrays[key].shape} in the "
                    "checkpoint"
                )
            plan.append((variable, arrays[key]))
    for variable, value in plan:
        variable.assign(value)
