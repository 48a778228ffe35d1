"""Unit tests of splitrec.party_server.model_export: one folder per version, written
whole, never overwritten by another model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from splitrec.common.digests import file_sha256
from splitrec.common.errors import (
    HandshakeError,
    InvalidMessageError,
    ModelIntegrityError,
    VersionTakenError,
)
from splitrec.common.metrics import Metrics
from splitrec.config.features import FeatureConfig
from splitrec.config.jobspec import ModelVersion
from splitrec.config.model import ModelConfig
from splitrec.models.build import build_party_base
from splitrec.models.features import encode_features
from splitrec.models.serving import BaseServing
from splitrec.models.steps import BaseStep
from splitrec.party_server.checkpoints import ModelState
from splitrec.party_server.export_files import FILE_LIST
from splitrec.party_server.model_export import (
    MODEL_FILE,
    export_part,
    exported_features,
    load_exported_state,
    remove_staging,
)
from splitrec.party_server.served_model import load_served_model
from tests.outputs import job_spec

FEATURES = (FeatureConfig("user", "UserID", "hashed", bins=11),)
FRAME = pd.DataFrame({"UserID": [str(i) for i in range(16)]})


def _step(seed: int, units: tuple[int, ...] = (8, 3)) -> BaseStep:
    encoded = encode_features(FRAME, FEATURES)
    base = build_party_base(
        "alice", encoded, np.arange(16), ModelConfig(4, units), seed
    )
    return BaseStep(base, "adam", 0.01)


def _state(step: BaseStep) -> ModelState:
    return ModelState(
        step.model.output_spec.structure,
        step.state_variables,
        step.optimizer.variables,
    )


def _part(seed: int) -> BaseServing:
    return BaseServing(FEATURES, _step(seed).model)


def _export(
    folder,
    step: BaseStep,
    version: str = "v1",
    epoch: int = 3,
    export_id: str = "e1",
):
    serving = BaseServing(FEATURES, step.model)
    state = _state(step).arrays()
    return export_part(
        job_spec(job_id="job-a"),
        "alice",
        folder,
        serving,
        version,
        epoch,
        None,
        state,
        export_id,
    )


def _recorded(part, version: str = "v1", epoch: int = 3) -> ModelVersion:
    """The version as the coordinator's manifest records its export."""
    return ModelVersion(
        "job-a", version, epoch, part.export_id, {"alice": part.files_digest}
    )


def test_a_version_is_written_once_and_described(tmp_path):
    spec = job_spec()
    # An export of v1 that a kill cut short left its staging folder.
    (tmp_path / "model" / ".v1-abc123" / "saved_model").mkdir(parents=True)
    metrics = Metrics(10, 0.5, float("nan"), 0.4, 0.3)
    state = _state(_step(1)).arrays()
    part = export_part(spec, "alice", tmp_path, _part(1), "v1", 3, metrics, state, "e1")

    folder = tmp_path / "model" / "v1"
    assert part.folder == folder
    described = json.loads((folder / MODEL_FILE).read_text())
    assert described["party"] == "alice" and described["role"] == "feature"
    assert described["model_digest"] == part.digest
    assert described["epoch"] == 3 and described["metrics"]["auc"] is None
    assert described["inputs"] == {"UserID": "UserID"}
    assert (described["job"], described["version"]) == (spec.job_id, "v1")
    assert part.export_id == described["export_id"] == "e1"
    # The file list covers every other file; its digest is what is returned.
    listed = json.loads((folder / FILE_LIST).read_text())["files"]
    files = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != FILE_LIST
    }
    assert set(listed) == files and MODEL_FILE in listed
    assert "saved_model/saved_model.pb" in listed
    assert listed[MODEL_FILE] == file_sha256(folder / MODEL_FILE)
    assert part.files_digest == file_sha256(folder / FILE_LIST)
    assert described["features"] == [
        {"name": "user", "column": "UserID", "kind": "hashed", "size": 11}
    ]
    assert exported_features(folder) == FEATURES
    # Nothing left behind but the version itself.
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["v1"]

    # Again with the same model (another export): the part as it was written.
    again = _export(tmp_path, _step(1), export_id="e2")
    assert again.digest == part.digest
    assert (again.export_id, again.files_digest) == ("e1", part.files_digest)
    with pytest.raises(VersionTakenError, match="already exists .* with another model"):
        _export(tmp_path, _step(2))


def test_what_exports_cut_short_left_is_removed_and_nothing_else(tmp_path):
    for job in ("job-1", "job-2"):
        (tmp_path / job / "model" / "v1" / "saved_model").mkdir(parents=True)
    leftovers = [
        tmp_path / "job-1" / "model" / ".v1-k2j4" / "saved_model",
        tmp_path / "job-2" / "model" / ".epoch-2.3-x_9",
    ]
    for leftover in leftovers:
        leftover.mkdir(parents=True)
    (tmp_path / "job-1" / "checkpoints" / ".v1-keep").mkdir(parents=True)
    (tmp_path / "job-2" / "model" / ".notes-1").write_text("a file, not a folder")

    removed = remove_staging(tmp_path)

    assert removed == [
        tmp_path / "job-1" / "model" / ".v1-k2j4",
        tmp_path / "job-2" / "model" / ".epoch-2.3-x_9",
    ]
    assert not any(p.exists() for p in removed)
    for job in ("job-1", "job-2"):
        assert (tmp_path / job / "model" / "v1" / "saved_model").is_dir()
    assert (tmp_path / "job-1" / "checkpoints" / ".v1-keep").is_dir()
    assert (tmp_path / "job-2" / "model" / ".notes-1").is_file()
    assert remove_staging(tmp_path) == []
    assert remove_staging(tmp_path / "absent") == []


@pytest.mark.parametrize("version", ["..", "a/b", "/tmp/x", ""])
def test_a_version_that_is_no_safe_name_is_refused(tmp_path, version):
    with pytest.raises(InvalidMessageError, match="model version"):
        _export(tmp_path, _step(1), version)
    assert not (tmp_path / "model").exists() or not any((tmp_path / "model").iterdir())


def test_a_warm_start_loads_the_weights_and_slots_of_its_own_part(tmp_path):
    trained = _step(1)
    trained.backward(
        encode_features(FRAME, FEATURES).take(np.arange(16)),
        np.ones((16, trained.model.output_spec.width), np.float32),
    )
    part = _export(tmp_path / "job-a", trained, "epoch-3", 3)
    fresh = _step(2)
    load_exported_state(_state(fresh), tmp_path, "alice", _recorded(part, "epoch-3"))
    for got, want in zip(
        fresh.state_variables + fresh.optimizer.variables,
        trained.state_variables + trained.optimizer.variables,
        strict=True,
    ):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize(
    ("version", "epoch", "units", "error", "message"),
    [
        ("v9", 3, (8, 3), HandshakeError, "is not in its output folder"),
        ("v1", 2, (8, 3), ModelIntegrityError, "names epoch 3 \\(expected 2\\)"),
        ("v1", 3, (6, 3), HandshakeError, "does not fit this job's model"),
    ],
)
def test_a_warm_start_refuses_a_part_it_cannot_use(
    tmp_path, version, epoch, units, error, message
):
    part = _export(tmp_path / "job-a", _step(1))
    fresh = _step(2, units)
    before = [v.numpy().copy() for v in fresh.state_variables]
    with pytest.raises(error, match=message) as caught:
        load_exported_state(
            _state(fresh), tmp_path, "alice", _recorded(part, version, epoch)
        )
    assert str(caught.value).startswith("party alice: model version")
    for got, want in zip(fresh.state_variables, before, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def _tamper(folder) -> None:
    path = folder / "base.weights.h5"
    path.write_bytes(path.read_bytes() + b"\0")


def _reseal(folder) -> None:
    """A changed file with a list rewritten to match it."""
    _tamper(folder)
    listed = json.loads((folder / FILE_LIST).read_text())
    listed["files"]["base.weights.h5"] = file_sha256(folder / "base.weights.h5")
    (folder / FILE_LIST).write_text(json.dumps(listed))


@pytest.mark.parametrize(
    ("change", "record", "message"),
    [
        (_tamper, {}, "file base.weights.h5 differs from its export"),
        (
            lambda f: (f / "state.npz").unlink(),
            {},
            "file state.npz is missing",
        ),
        (
            lambda f: (f / "saved_model" / "extra.bin").write_bytes(b"x"),
            {},
            "file saved_model/extra.bin was not exported",
        ),
        (
            lambda f: None,
            {"export_id": "e7"},
            "names export_id 'e1' \\(expected 'e7'\\)",
        ),
        (_reseal, {}, "file files.json .* is not the list this party returned"),
        (
            lambda f: (f / FILE_LIST).unlink(),
            {},
            "has no file list .* export it again under a new version",
        ),
    ],
)
def test_a_warm_start_refuses_a_part_that_is_not_the_one_exported(
    tmp_path, change, record, message
):
    part = _export(tmp_path / "job-a", _step(1))
    change(tmp_path / "job-a" / "model" / "v1")
    init = _recorded(part)
    if record:
        init = ModelVersion(
            init.job, init.version, init.epoch, **{**record, "files": init.files}
        )
    fresh = _step(2)
    before = [v.numpy().copy() for v in fresh.state_variables]
    with pytest.raises(ModelIntegrityError, match=message) as caught:
        load_exported_state(_state(fresh), tmp_path, "alice", init)
    assert str(caught.value).startswith("party alice: model version 'v1' of job")
    for got, want in zip(fresh.state_variables, before, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_version_without_a_file_list_is_not_exported_over(tmp_path):
    _export(tmp_path, _step(1))
    (tmp_path / "model" / "v1" / FILE_LIST).unlink()
    with pytest.raises(VersionTakenError, match="before exports recorded their files"):
        _export(tmp_path, _step(1), export_id="e2")
    # A changed part is not exported over either: the change is reported.
    _export(tmp_path, _step(1), "v2")
    _tamper(tmp_path / "model" / "v2")
    with pytest.raises(ModelIntegrityError, match="base.weights.h5 differs"):
        _export(tmp_path, _step(1), "v2", export_id="e3")


def test_serving_loads_a_part_only_as_exported_and_under_its_own_version(tmp_path):
    _export(tmp_path / "job-a", _step(1))
    models = tmp_path / "job-a" / "model"
    served = load_served_model(tmp_path, "alice", "job-a", "v1")
    assert (served.export.version, served.export.epoch) == ("v1", 3)
    assert served.export.export_id == "e1"
    shutil.copytree(models / "v1", models / "v2")
    with pytest.raises(ModelIntegrityError, match="names version 'v1' \\(expected"):
        load_served_model(tmp_path, "alice", "job-a", "v2")
    with pytest.raises(ModelIntegrityError, match="names party 'alice' \\(expected"):
        load_served_model(tmp_path, "bob", "job-a", "v1")
    _tamper(models / "v1")
    with pytest.raises(ModelIntegrityError, match="party alice: model version 'v1'"):
        load_served_model(tmp_path, "alice", "job-a", "v1")
