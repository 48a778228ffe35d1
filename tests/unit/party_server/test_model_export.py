"""Unit tests of party_server.model_export: one folder per version, written
whole, never overwritten by another model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from common.config import FeatureConfig, ModelConfig
from common.errors import InvalidMessageError, VersionTakenError
from common.features import encode_features
from common.metrics import Metrics
from common.models.build import build_party_base
from common.models.serving import BaseServing
from party_server.model_export import MODEL_FILE, export_part
from tests.outputs import job_spec

FEATURES = (FeatureConfig("user", "UserID", "hashed", bins=11),)
FRAME = pd.DataFrame({"UserID": [str(i) for i in range(16)]})


def _part(seed: int) -> BaseServing:
    encoded = encode_features(FRAME, FEATURES)
    base = build_party_base(
        "alice", encoded, np.arange(16), ModelConfig(4, (8, 3)), seed
    )
    return BaseServing(FEATURES, base)


def test_a_version_is_written_once_and_described(tmp_path):
    spec = job_spec()
    metrics = Metrics(10, 0.5, float("nan"), 0.4, 0.3)
    part = export_part(spec, "alice", tmp_path, _part(1), "v1", 3, metrics)

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
    # Nothing left behind but the version itself.
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["v1"]

    again = export_part(spec, "alice", tmp_path, _part(1), "v1", 3, metrics)
    assert again.digest == part.digest
    with pytest.raises(VersionTakenError, match="already exists .* with another model"):
        export_part(spec, "alice", tmp_path, _part(2), "v1", 3, metrics)


@pytest.mark.parametrize("version", ["..", "a/b", "/tmp/x", ""])
def test_a_version_that_is_no_safe_name_is_refused(tmp_path, version):
    with pytest.raises(InvalidMessageError, match="model version"):
        export_part(job_spec(), "alice", tmp_path, _part(1), version, 1, None)
    assert not (tmp_path / "model").exists() or not any((tmp_path / "model").iterdir())
