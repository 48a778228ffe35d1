"""The manifest: strict JSON, read back as written; its history per checkpoint."""

from __future__ import annotations

import json
import math

import pytest

from splitrec.common.errors import JobFailedError
from splitrec.coordinator.manifest import (
    CheckpointEntry,
    Manifest,
    read_manifest,
    write_manifest,
)


def test_manifest_round_trip_and_unreadable_file(tmp_path):
    manifest = Manifest(
        "j", "fp", [CheckpointEntry(3, 1, 40, {"a": "d"})], [{"epoch": 1}], False
    )
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert read_manifest(tmp_path / "none") is None
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(JobFailedError, match="move it away to start the job afresh"):
        read_manifest(tmp_path)


def test_manifest_is_strict_json_and_undefined_metrics_come_back_as_nan(tmp_path):
    record = {"epoch": 1, "val_auc": math.nan, "train_loss": 0.5, "epsilon": None}
    manifest = Manifest("j", "fp", [CheckpointEntry(0, 1, 0, {})], [record])

    write_manifest(tmp_path, manifest)

    text = (tmp_path / "manifest.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["records"][0]["val_auc"] is None


def test_back_to_an_older_checkpoint_drops_the_later_ones_and_their_epochs():
    entries = [
        CheckpointEntry(3, 1, 40, {}),
        CheckpointEntry(4, 2, 0, {}),
        CheckpointEntry(5, 2, 40, {}),
    ]
    manifest = Manifest("j", "fp", list(entries), [{"epoch": 1}, {"epoch": 2}])

    manifest.back_to(entries[0])

    assert manifest.checkpoints == entries[:1]
    assert manifest.records == [{"epoch": 1}]
    assert manifest.next_id() == 4
