"""A party writes its own part of a trained model, and only its own.

``output_dir/<job>/model/<version>/`` holds:

- ``saved_model/``: a TensorFlow SavedModel whose ``serving_default`` signature
  takes the party's raw CSV columns (see ``splitrec.models.serving``);
- ``base.weights.h5`` (and ``fuse.weights.h5`` at the label party): the Keras
  weights of its models;
- ``part.keras``: the part as one Keras model, preprocessing included
  (``splitrec.models.part_file``; not for a ``custom`` family, whose code the
  file cannot carry);
- ``state.npz``: its variables and optimizer slots by path and its structure
  digest, as a checkpoint holds them (what a warm start loads);
- ``features.json``: its features as the job fitted them (vocabularies
  included);
- ``model.json``: what the part is (party, role, family, features, inputs and
  outputs, the model digest), the export it came from (job, version, epoch and
  the coordinator's export id), the job settings it was trained with, the
  metrics it was exported at, and the versions of the project and TensorFlow;
- ``files.json``: the SHA-256 of every other file, written last (see
  ``splitrec.party_server.export_files``); its own digest goes to the coordinator.

The folder is written under a temporary name (``.<version>-<random>``) and
renamed: a version is either complete or absent. What an export cut short left
is removed when the party starts (``remove_staging``). Exporting a version
again with the same model is a no-op (the part keeps the export id it was
written with); with another model, or over a part without a file list, it is
refused (``VersionTakenError``).
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

from splitrec.common.atomic import storage_error
from splitrec.common.errors import (
    CheckpointMismatchError,
    HandshakeError,
    InvalidMessageError,
    ModelIntegrityError,
    StorageError,
    VersionTakenError,
)
from splitrec.common.history import json_record
from splitrec.common.metrics import Metrics
from splitrec.common.names import name_problem
from splitrec.common.paths import confined
from splitrec.config.features import FeatureConfig
from splitrec.config.jobspec import JobSpec, ModelVersion
from splitrec.models.features import feature_shape
from splitrec.models.part_file import PART_FILE, feature_from_dict, save_part_file
from splitrec.models.serving import BaseServing, FuseServing, save_serving
from splitrec.party_server.checkpoints import ModelState, variables_state
from splitrec.party_server.export_files import (
    FILE_LIST,
    MODEL_FILE,
    check_part,
    write_file_list,
)
from splitrec.wire.version import PROJECT_VERSION

logger = logging.getLogger(__name__)

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
    # The export the part was written by, and the digest of its file list.
    export_id: str = ""
    files_digest: str = ""


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
    export: tuple[str, int, str],
    metrics: Metrics | None,
) -> dict:
    """``model.json``'s content; ``export`` is (version, epoch, export id)."""
    version, epoch, export_id = export
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
        "version": version,
        "export_id": export_id,
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


def _staging(version: str) -> str:
    """How the folder a version is written in before its rename begins (a
    version is a safe name, which never begins with a dot)."""
    return f".{version}-"


def remove_staging(output_dir: Path) -> list[Path]:
    """Removes the folders that exports cut short (a kill, a power cut) left
    in the ``model`` folder of every job in ``output_dir``; returns them. Run
    when the party starts, before any job can export."""
    removed = []
    for stale in sorted(output_dir.glob(f"*/model/{_staging('*')}*")):
        if not stale.is_dir() or stale.is_symlink():
            continue
        try:
            shutil.rmtree(stale)
        except OSError as exc:
            logger.warning(
                "%s is what an export cut short left, and cannot be removed "
                "(%s); remove it by hand",
                stale,
                exc,
            )
            continue
        removed.append(stale)
    return removed


def _existing(folder: Path, digest: str, version: str, where: str) -> ExportedPart:
    """The part already exported under ``version``, when it holds this model
    and is whole."""
    if not (folder / FILE_LIST).exists():
        raise VersionTakenError(
            f"{where} already exists at {folder}, written before exports "
            "recorded their files; export under another version"
        )
    found, files_digest = check_part(folder, where, {})
    if found.get("model_digest") != digest:
        raise VersionTakenError(
            f"model version {version!r} already exists at {folder} with another "
            "model; export under another version"
        )
    return ExportedPart(
        version, digest, folder, str(found.get("export_id", "")), files_digest
    )


def _keras_file(
    party: str, serving: BaseServing | FuseServing, staging: Path
) -> str | None:
    """Writes ``part.keras`` (see ``splitrec.models.part_file``) unless the part's
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
    export_id: str,
) -> ExportedPart:
    """Writes the party's part under ``version`` (see the module docstring);
    ``state`` is its model's part of a checkpoint (``ModelState.arrays``) and
    ``export_id`` names the export every party's part comes from."""
    folder = model_folder(job_folder, version)
    where = f"party {party}: model version {version!r} of job {spec.job_id!r}"
    models = {"base": serving.base}
    if isinstance(serving, FuseServing):
        models["fuse"] = serving.fuse
    digest = model_digest(models)
    if folder.exists():
        return _existing(folder, digest, version, where)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # What an export of this version cut short (a kill, a full disk) left.
    for stale in folder.parent.glob(f"{_staging(version)}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=_staging(version)))
    try:
        save_serving(serving, staging / "saved_model")
        keras_file = _keras_file(party, serving, staging)
        for name, model in models.items():
            model.save_weights(str(staging / f"{name}.weights.h5"))
        buffer = io.BytesIO()
        np.savez(buffer, **state)
        (staging / STATE_FILE).write_bytes(buffer.getvalue())
        fitted = [f.model_dump() for f in serving.raw.features]
        (staging / FEATURES_FILE).write_text(json.dumps(fitted, indent=1) + "\n")
        export = (version, epoch, export_id)
        description = _description(spec, party, serving, digest, export, metrics)
        description["keras_file"] = keras_file
        text = json.dumps(description, indent=2, allow_nan=False) + "\n"
        (staging / MODEL_FILE).write_text(text, encoding="utf-8")
        files_digest = write_file_list(staging)
        os.rename(staging, folder)
    except FileExistsError:
        shutil.rmtree(staging, ignore_errors=True)
        return _existing(folder, digest, version, where)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise storage_error(folder, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "job %s: exported model version %s to %s (digest %s, export %s)",
        spec.job_id,
        version,
        folder,
        digest[:12],
        export_id,
    )
    return ExportedPart(version, digest, folder, export_id, files_digest)


def checked_version(output_dir: Path, party: str, init: ModelVersion) -> Path:
    """The folder of the party's part of ``init`` (a warm start's or a scoring
    job's version), once every file matches its list, ``model.json`` names
    this party and the export the coordinator recorded, and the list is the
    one the party returned at that export. ``HandshakeError`` when the part is
    missing, ``ModelIntegrityError`` naming the file otherwise."""
    where = f"party {party}: model version {init.version!r} of job {init.job!r}"
    folder = model_folder(confined(output_dir, init.job), init.version)
    if not folder.is_dir():
        raise HandshakeError(
            f"{where} is not in its output folder ({folder} is missing); the "
            "job needs every party's part"
        )
    expected = {
        "party": party,
        "job": init.job,
        "version": init.version,
        "epoch": init.epoch,
        "export_id": init.export_id,
    }
    _, digest = check_part(folder, where, expected)
    recorded = init.files.get(party)
    if digest != recorded:
        raise ModelIntegrityError(
            f"{where}: file {FILE_LIST} in {folder} is not the list this party "
            f"returned when version {init.version!r} was exported (export "
            f"{init.export_id}, as the coordinator's manifest records it"
            + ("" if recorded else ", which names no part of this party")
            + "); export the version again under a new name at every party"
        )
    return folder


def load_exported_state(
    model_state: ModelState, output_dir: Path, party: str, init: ModelVersion
) -> None:
    """A warm start: loads the party's own part of an exported version into
    its job's model and optimizer, once checked (``checked_version``).
    ``HandshakeError`` when the part does not fit the model (saying what
    differs); nothing changes then."""
    where = f"party {party}: model version {init.version!r} of job {init.job!r}"
    folder = checked_version(output_dir, party, init)
    path = folder / STATE_FILE
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise HandshakeError(
            f"{where} cannot be used: {path} cannot be read ({exc}); export the "
            "version again, or start from another one"
        ) from None
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
