"""A party writes its own part of a trained model, and only its own.

``output_dir/<job>/model/<version>/`` holds:

- ``saved_model/``: a TensorFlow SavedModel whose ``serving_default`` signature
  takes the party's raw CSV columns (see ``common.models.serving``);
- ``base.weights.h5`` (and ``fuse.weights.h5`` at the label party): the Keras
  weights of its models;
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
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from common.atomic import storage_error
from common.errors import InvalidMessageError, StorageError, VersionTakenError
from common.features import feature_shape
from common.history import json_record
from common.jobspec import JobSpec
from common.metrics import Metrics
from common.models.serving import save_serving
from common.names import name_problem
from common.paths import confined
from common.version import PROJECT_VERSION
from party_server.checkpoints import variables_state

logger = logging.getLogger(__name__)

MODEL_FILE = "model.json"
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
    serving: tf.Module,
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
    if hasattr(serving, "fuse"):
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


def export_part(
    spec: JobSpec,
    party: str,
    job_folder: Path,
    serving: tf.Module,
    version: str,
    epoch: int,
    metrics: Metrics | None,
) -> ExportedPart:
    """Writes the party's part under ``version`` (see the module docstring)."""
    folder = model_folder(job_folder, version)
    models = {"base": serving.base}
    if hasattr(serving, "fuse"):
        models["fuse"] = serving.fuse
    digest = model_digest(models)
    if folder.exists():
        return _existing(folder, digest, version)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{version}-"))
    try:
        save_serving(serving, staging / "saved_model")
        for name, model in models.items():
            model.save_weights(str(staging / f"{name}.weights.h5"))
        description = _description(spec, party, serving, digest, epoch, metrics)
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
