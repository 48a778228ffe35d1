"""Unit tests of party_server.model_export: one folder per version, written
whole, never overwritten by another model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from common.config import FeatureConfig, ModelConfig
from common.errors import HandshakeError, InvalidMessageError, VersionTakenError
from common.features import encode_features
from common.jobspec import ModelVersion
from common.metrics import Metrics
from common.models.build import build_party_base
from common.models.serving import BaseServing
from common.models.steps import BaseStep
from party_server.checkpoints import ModelState
from party_server.model_export import (
    MODEL_FILE,
    export_part,
    exported_features,
    load_exported_state,
    remove_staging,
)
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


def _export(folder, step: BaseStep, version: str = "v1", epoch: int = 3):
    serving = BaseServing(FEATURES, step.model)
    state = _state(step).arrays()
    return export_part(
        job_spec(), "alice", folder, serving, version, epoch, None, state
    )


def test_a_version_is_written_once_and_described(tmp_path):
    spec = job_spec()
    # An export of v1 that a kill cut short left its staging folder.
    (tmp_path / "model" / ".v1-abc123" / "saved_model").mkdir(parents=True)
    metrics = Metrics(10, 0.5, float("nan"), 0.4, 0.3)
    part = export_part(
        spec, "alice", tmp_path, _part(1), "v1", 3, metrics, _state(_step(1)).arrays()
    )

    folder = tmp_path / "model" / "v1"
    assert part.folder == folder
    described = json.loads((folder / MODEL_FILE).read_text())
    assert described["party"] == "alice" and described["role"] == "feature"
    assert described["model_digest"] == part.digest
    assert described["epoch"] == 3 and described["metrics"]["auc"] is None
    assert described["inputs"] == {"UserID": "UserID"}
    assert described["features"] == [
        {"name": "user", "column": "UserID", "kind": "hashed", "size": 11}
    ]
    assert exported_features(folder) == FEATURES
    # Nothing left behind but the version itself.
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["v1"]

    again = _export(tmp_path, _step(1))
    assert again.digest == part.digest
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
    _export(tmp_path / "job-a", trained, "epoch-3", 3)
    fresh = _step(2)
    load_exported_state(
        _state(fresh), tmp_path, "alice", ModelVersion("job-a", "epoch-3", 3)
    )
    for got, want in zip(
        fresh.state_variables + fresh.optimizer.variables,
        trained.state_variables + trained.optimizer.variables,
        strict=True,
    ):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize(
    ("init", "units", "message"),
    [
        (ModelVersion("job-a", "v9", 3), (8, 3), "is not in its output folder"),
        (ModelVersion("job-a", "v1", 2), (8, 3), "exported after epoch 3, the"),
        (ModelVersion("job-a", "v1", 3), (6, 3), "does not fit this job's model"),
    ],
)
def test_a_warm_start_refuses_a_part_it_cannot_use(tmp_path, init, units, message):
    _export(tmp_path / "job-a", _step(1))
    fresh = _step(2, units)
    before = [v.numpy().copy() for v in fresh.state_variables]
    with pytest.raises(HandshakeError, match=message) as caught:
        load_exported_state(_state(fresh), tmp_path, "alice", init)
    assert str(caught.value).startswith("party alice: model version")
    for got, want in zip(fresh.state_variables, before, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
