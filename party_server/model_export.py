"""A party writes its own part of a trained model, and only its own.

``output_dir/<job>/model/<version>/`` holds:

- ``saved_model/``: a TensorFlow SavedModel whose ``serving_default`` signature
  takes the party's raw CSV columns (see ``common.models.serving``);
- ``base.weights.h5`` (and ``fuse.weights.h5`` at the label party): the Keras
  weights of its models;
- ``part.keras``: the part as one Keras model, preprocessing included
  (``common.models.part_file``; not for a ``custom`` family, whose code the
  file cannot carry);
- ``state.npz``: its variables and optimizer slots by path and its structure
  digest, as a checkpoint holds them (what a warm start loads);
- ``features.json``: its features as the job fitted them (vocabularies
  included);
- ``model.json``: what the part is (party, role, family, features, inputs and
  outputs, the model digest), the job settings it was trained with, the epoch
  and metrics it was exported at, and the versions of the project and
  TensorFlow.

The folder is written under a temporary name and renamed: a version is either
complete or absent. Exporting a version again with the same model is a no-op;
with another model it is refused (``VersionTakenError``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common.atomic import storage_error
from common.config import FeatureConfig
from common.errors import (
    CheckpointMismatchError,
    HandshakeError,
    InvalidMessageError,
    StorageError,
    VersionTakenError,
)
from common.features import feature_shape
from common.history import json_record
from common.jobspec import JobSpec, ModelVersion
from common.metrics import Metrics
from common.models.part_file import PART_FILE, feature_from_dict, save_part_file
from common.models.serving import BaseServing, FuseServing, save_serving
from common.names import name_problem
from common.paths import confined
from common.version import PROJECT_VERSION
from party_server.checkpoints import ModelState, variables_state

logger = logging.getLogger(__name__)

MODEL_FILE = "model.json"
# The part's variables and optimizer slots by path (what a warm start loads).
STATE_FILE = "state.npz"
# The party's features as fitted by the job (vocabularies included): how new
# rows are encoded for this part outside a SavedModel.
FEATURES_FILE = "features.json"
FORMAT = 1


@dataclass(frozen=True)
class ExportedPart:
    version: str
    # SHA-256 over the part's variables by path (equal models, equal digests).
    digest: str
    folder: Path


def model_digest(models: dict[str, keras.Model]) -> str:
    """SHA-256 over every variable of the models, by path and value."""
    digest = hashlib.sha256()
    for name, model in sorted(models.items()):
        for path, value in sorted(variables_state(name, model.variables).items()):
            digest.update(path.encode("utf-8") + b"\x1f")
            digest.update(str(value.dtype).encode() + str(value.shape).encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def metrics_record(metrics: Metrics) -> dict:
    """The metrics for strict JSON (an undefined one is null), tasks by name."""
    record = dataclasses.asdict(metrics)
    record["tasks"] = {t["name"]: t for t in record["tasks"]} or None
    return json_record(record)


def model_folder(job_folder: Path, version: str) -> Path:
    """``<job folder>/model/<version>``; versions follow the safe-name rule."""
    problem = name_problem(version)
    if problem is not None:
        raise InvalidMessageError(f"model version {problem}")
    return confined(job_folder, "model", version)


def _description(
    spec: JobSpec,
    party: str,
    serving: BaseServing | FuseServing,
    digest: str,
    epoch: int,
    metrics: Metrics | None,
) -> dict:
    fitted = {f.name: f for f in serving.raw.features}
    features = [
        {
            "name": f.name,
            "column": f.column,
            "kind": f.kind,
            "size": feature_shape(f, fitted).size,
        }
        for f in serving.raw.features
    ]
    output = serving.base.output_spec
    description = {
        "format": FORMAT,
        "job": spec.job_id,
        "party": party,
        "role": "label" if party == spec.label_party else "feature",
        "family": output.family,
        "features": features,
        "inputs": dict(serving.inputs),
        "output": {"width": output.width, "parts": [list(p) for p in output.parts]},
        "model_digest": digest,
        "structure": output.structure,
        "epoch": epoch,
        "metrics": None if metrics is None else metrics_record(metrics),
        "job_settings": {
            "seed": spec.seed,
            "batch_size": spec.batch_size,
            "epochs": spec.epochs,
            "optimizer": spec.optimizer,
            "learning_rate": spec.learning_rate,
            "parties": [p.name for p in spec.parties],
            "label_party": spec.label_party,
            "aggregation": spec.aggregation,
            "secure_aggregation": spec.secure_aggregation,
            "privacy": dataclasses.asdict(spec.privacy),
        },
        "versions": {"splitrec": PROJECT_VERSION, "tensorflow": tf.__version__},
    }
    if isinstance(serving, FuseServing):
        description["peers"] = [list(p) for p in serving.peers]
        description["tasks"] = [t.name for t in serving.objective.tasks]
        description["scores"] = "sigmoid of each task's logit"
    return description


def _existing(folder: Path, digest: str, version: str) -> ExportedPart:
    try:
        found = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"{folder} exists but its {MODEL_FILE} cannot be read ({exc}); move it "
            "away or export under another version"
        ) from None
    if found.get("model_digest") != digest:
        raise VersionTakenError(
            f"model version {version!r} already exists at {folder} with another "
            "model; export under another version"
        )
    return ExportedPart(version, digest, folder)


def _keras_file(
    party: str, serving: BaseServing | FuseServing, staging: Path
) -> str | None:
    """Writes ``part.keras`` (see ``common.models.part_file``) unless the part's
    model is a user's own code; returns its name, or None."""
    model = serving.model
    if model is None or model.family == "custom":
        return None
    save_part_file(party, serving, model, staging / PART_FILE)
    return PART_FILE


def export_part(
    spec: JobSpec,
    party: str,
    job_folder: Path,
    serving: BaseServing | FuseServing,
    version: str,
    epoch: int,
    metrics: Metrics | None,
    state: dict[str, np.ndarray],
) -> ExportedPart:
    """Writes the party's part under ``version`` (see the module docstring);
    ``state`` is its model's part of a checkpoint (``ModelState.arrays``)."""
    folder = model_folder(job_folder, version)
    models = {"base": serving.base}
    if isinstance(serving, FuseServing):
        models["fuse"] = serving.fuse
    digest = model_digest(models)
    if folder.exists():
        return _existing(folder, digest, version)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # What an export of this version cut short (a kill, a full disk) left.
    for stale in folder.parent.glob(f".{version}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{version}-"))
    try:
        save_serving(serving, staging / "saved_model")
        keras_file = _keras_file(party, serving, staging)
        for name, model in models.items():
            model.save_weights(str(staging / f"{name}.weights.h5"))
        buffer = io.BytesIO()
        np.savez(buffer, **state)
        (staging / STATE_FILE).write_bytes(buffer.getvalue())
        fitted = [dataclasses.asdict(f) for f in serving.raw.features]
        (staging / FEATURES_FILE).write_text(json.dumps(fitted, indent=1) + "\n")
        description = _description(spec, party, serving, digest, epoch, metrics)
        description["keras_file"] = keras_file
        text = json.dumps(description, indent=2, allow_nan=False) + "\n"
        (staging / MODEL_FILE).write_text(text, encoding="utf-8")
        os.rename(staging, folder)
    except FileExistsError:
        shutil.rmtree(staging, ignore_errors=True)
        return _existing(folder, digest, version)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise storage_error(folder, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "job %s: exported model version %s to %s (digest %s)",
        spec.job_id,
        version,
        folder,
        digest[:12],
    )
    return ExportedPart(version, digest, folder)


def load_exported_state(
    model_state: ModelState, output_dir: Path, party: str, init: ModelVersion
) -> None:
    """A warm start: loads the party's own part of an exported version into
    its job's model and optimizer. ``HandshakeError`` when the part is missing,
    was exported after another epoch than the coordinator recorded, or does
    not fit the model (saying what differs); nothing changes then."""
    where = f"party {party}: model version {init.version!r} of job {init.job!r}"
    folder = model_folder(confined(output_dir, init.job), init.version)
    path = folder / MODEL_FILE
    try:
        described = json.loads(path.read_text(encoding="utf-8"))
        path = folder / STATE_FILE
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except FileNotFoundError as exc:
        raise HandshakeError(
            f"{where} is not in its output folder ({exc.filename} is missing); "
            "the warm start needs every party's part"
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise HandshakeError(
            f"{where} cannot be used: {path} cannot be read ({exc}); export the "
            "version again, or start from another one"
        ) from None
    if described.get("epoch") != init.epoch:
        raise HandshakeError(
            f"{where} at {folder} was exported after epoch "
            f"{described.get('epoch')}, the coordinator's record says {init.epoch}; "
            "the version was exported again differently at this party"
        )
    try:
        model_state.load(arrays, str(folder / STATE_FILE))
    except CheckpointMismatchError as exc:
        raise HandshakeError(f"{where} does not fit this job's model: {exc}") from None
    logger.info("warm start: loaded %s from %s", where, folder)


def exported_features(folder: Path) -> tuple[FeatureConfig, ...]:
    """The fitted features an exported part encodes raw values with."""
    path = folder / FEATURES_FILE
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        return tuple(feature_from_dict(f) for f in found)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise StorageError(
            f"{path}: not the features of an exported part: {exc}"
        ) from None
