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

from splitrec.common.atomic import write_atomically_with
from splitrec.common.errors import (
    CheckpointLostError,
    CheckpointMismatchError,
    InvalidMessageError,
)
from splitrec.common.names import checkpoint_id_problem

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
        """Writes the arrays (straight to the file, never whole in memory);
        returns the file's SHA-256 and size."""
        path = self.path(checkpoint_id)
        write_atomically_with(path, lambda handle: np.savez(handle, **arrays), 0o600)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest(), path.stat().st_size

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


# The digest of the model's structure, stored beside its variables.
STRUCTURE_KEY = "structure"


def variables_state(prefix: str, variables: list) -> dict[str, np.ndarray]:
    """Each variable's value under ``prefix/<its path>``."""
    return {f"{prefix}/{v.path}": v.numpy() for v in variables}


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


class ModelState:
    """A model's part of a checkpoint: its variables and optimizer slots by path,
    and the digest of its structure (see ``splitrec.models.registry``)."""

    def __init__(
        self,
        structure: str,
        variables: list,
        optimizer_variables: list,
        compensation_variables: list | None = None,
    ) -> None:
        self.structure = structure
        self.groups = {"model": variables, "optimizer": optimizer_variables}
        if compensation_variables:
            # What a predicting step extrapolates (its last update).
            self.groups["compensation"] = compensation_variables

    def arrays(self) -> dict[str, np.ndarray]:
        state = {STRUCTURE_KEY: np.array(self.structure)}
        for prefix, group in self.groups.items():
            state.update(variables_state(prefix, group))
        return state

    def load(self, arrays: dict[str, np.ndarray], source: str) -> None:
        """Assigns what ``arrays`` stored to the variables, matched by path.

        Everything is checked first (paths, shapes, then the structure digest),
        so a checkpoint that does not fit changes nothing and the error says
        what differs.
        """
        plan = []
        for prefix, group in self.groups.items():
            plan += _matched(arrays, source, prefix, group)
        saved = str(arrays[STRUCTURE_KEY]) if STRUCTURE_KEY in arrays else ""
        if saved != self.structure:
            raise CheckpointMismatchError(
                f"{source} was saved by a model of another structure (digest "
                f"{saved[:12] or 'none'}, this model's {self.structure[:12]}): its "
                "settings or inputs changed since"
            )
        for variable, value in plan:
            variable.assign(value)


def _matched(
    arrays: dict[str, np.ndarray], source: str, prefix: str, group: list
) -> list[tuple[object, np.ndarray]]:
    """Each variable of ``group`` with its stored value; an error naming what
    differs when the checkpoint holds other variables or shapes."""
    stored = {k[len(prefix) + 1 :] for k in arrays if k.startswith(prefix + "/")}
    here = {v.path for v in group}
    only_stored, only_here = sorted(stored - here), sorted(here - stored)
    if only_stored or only_here:
        raise CheckpointMismatchError(
            f"{source} was saved by another model: {prefix} variables only in "
            f"the checkpoint: {_listed(only_stored) or 'none'}; only in this "
            f"model: {_listed(only_here) or 'none'}"
        )
    pairs = []
    for variable in group:
        value = arrays[f"{prefix}/{variable.path}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointMismatchError(
                f"{source} was saved by another model: {prefix} variable "
                f"{variable.path} has shape {tuple(variable.shape)} here, "
                f"{tuple(value.shape)} in the checkpoint"
            )
        pairs.append((variable, value))
    return pairs
