"""An exported model part loaded for online scoring.

Serving reads only what the export wrote (``splitrec.party_server.model_export``): the
SavedModel's serving signature, which encodes raw column values with the job's
fitted preprocessing, and ``model.json``. The party's current config does not
matter to it, so a party can change its features for the next job and go on
serving the old version. Every file is checked against the part's file list
before anything is loaded (``splitrec.party_server.export_files``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from splitrec.common.errors import DataError
from splitrec.common.online import ExportIdentity
from splitrec.common.paths import confined
from splitrec.models.serving import SIGNATURE, hidden_input
from splitrec.party_server.export_files import check_part, folder_signature
from splitrec.party_server.model_export import model_folder

# Rows per call when a party runs its model over its whole table.
CHUNK = 8192


def chunks(columns: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """The rows of ``columns`` (equal lengths) in slices of ``CHUNK``."""
    rows = len(next(iter(columns.values()))) if columns else 0
    for start in range(0, rows, CHUNK):
        yield {c: v[start : start + CHUNK] for c, v in columns.items()}


@dataclass(frozen=True)
class ServedModel:
    job: str
    version: str
    folder: Path
    label: bool
    digest: str
    # Each raw column the part reads and its signature input name.
    inputs: dict[str, str]
    width: int
    # The label party's part: each feature party and its output width.
    peers: tuple[tuple[str, int], ...]
    tasks: tuple[str, ...]
    function: Any
    # Keeps the loaded SavedModel (which owns the function's variables) alive.
    loaded: Any
    # The export the part came from (its model.json).
    export: ExportIdentity = ExportIdentity()
    # The folder as it was when checked (``folder_signature``).
    signature: tuple = ()

    def _columns(self, columns: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
        return {
            name: tf.constant(columns[column], tf.string)
            for column, name in self.inputs.items()
        }

    def hidden(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """A feature party's outputs ``[B, width]`` for raw columns ``[B]``."""
        parts = [
            self.function(**self._columns(chunk))["hidden"].numpy()
            for chunk in chunks(columns)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.width), np.float32)

    def scores(
        self, columns: dict[str, np.ndarray], hidden: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The label party's scores ``[B, tasks]`` for its raw columns and each
        feature party's outputs of the same rows."""
        inputs = self._columns(columns)
        for party, _ in self.peers:
            inputs[hidden_input(party)] = tf.constant(hidden[party], tf.float32)
        scores = self.function(**inputs)["scores"].numpy()
        return scores.reshape(len(scores), -1)


def load_served_model(
    output_dir: Path, party: str, job: str, version: str
) -> ServedModel:
    """The party's own exported part ``version`` of ``job``, once its files
    match their list and its ``model.json`` names this party, job and version;
    ``DataError`` (``ModelIntegrityError`` for a changed part) saying what is
    missing or why it cannot be served."""
    folder = model_folder(confined(output_dir, job), version)
    where = f"party {party}: model version {version!r} of job {job!r}"
    if not folder.is_dir():
        raise DataError(
            f"model version {version!r} of job {job!r} at {folder} is not exported "
            "here; export it first (splitrec export) or name another "
            "version in serving.model"
        )
    expected = {"party": party, "job": job, "version": version}
    signature = folder_signature(folder)
    described, _ = check_part(folder, where, expected)
    if described.get("job_settings", {}).get("secure_aggregation"):
        raise DataError(
            f"{where} at {folder} was trained with secure aggregation: serving it "
            "would show the label party each feature party's output, which the "
            "job hid"
        )
    try:
        loaded = tf.saved_model.load(str(folder / "saved_model"))
        function = loaded.signatures[SIGNATURE]
    except (OSError, KeyError, ValueError, tf.errors.OpError) as exc:
        raise DataError(
            f"{where} at {folder}: the SavedModel cannot be loaded: {exc}"
        ) from None
    label = described.get("role") == "label"
    return ServedModel(
        job=job,
        version=version,
        folder=folder,
        label=label,
        digest=described["model_digest"],
        inputs=dict(described["inputs"]),
        width=int(described["output"]["width"]),
        peers=tuple((p, int(w)) for p, w in described.get("peers", ())),
        tasks=tuple(described.get("tasks", ())),
        function=function,
        loaded=loaded,
        export=ExportIdentity(
            job, version, int(described["epoch"]), str(described["export_id"])
        ),
        signature=signature,
    )
