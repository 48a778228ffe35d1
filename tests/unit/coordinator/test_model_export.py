"""The coordinator's side of exports: which epoch and checkpoint an export
takes, and which version a warm start names."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from splitrec.common.errors import ConfigError, JobFailedError
from splitrec.common.history import EpochRecord
from splitrec.config.job import JobConfig
from splitrec.config.jobspec import ModelVersion, PartExport
from splitrec.config.party import JobPartyConfig
from splitrec.coordinator.manifest import CheckpointEntry, Manifest, write_manifest
from splitrec.coordinator.model_export import (
    choose_export,
    export_everywhere,
    version_name,
    warm_start,
)

CONFIG = JobConfig(
    "job-b",
    (JobPartyConfig("alice", "a:1"), JobPartyConfig("bob", "b:1")),
    "bob",
    epochs=5,
    source=Path("job.yaml"),
)


def _manifest(aucs: list[float], kept: list[int], first: int = 1) -> Manifest:
    records = [
        dataclasses.asdict(
            EpochRecord(first + i, 0.5, 0.6, 0.5, auc, 0.5, 0.5, 1, 1, 1)
        )
        for i, auc in enumerate(aucs)
    ]
    entries = [CheckpointEntry(i, epoch, 0, {}) for i, epoch in enumerate(kept)]
    return Manifest("job-b", "fp", entries, records, True)


def test_an_export_takes_the_epoch_asked_or_the_best_one():
    manifest = _manifest([0.70, 0.75, math.nan, 0.72], [2, 3, 4])
    assert choose_export(manifest, Path("r"), 3, CONFIG).record.epoch == 3
    best = choose_export(manifest, Path("r"), None, CONFIG)
    assert (best.record.epoch, best.checkpoint.checkpoint_id) == (2, 0)


def test_an_export_says_what_it_cannot_take():
    manifest = _manifest([0.70, 0.75, 0.72], [2, 3])
    with pytest.raises(JobFailedError, match=r"kept \(the manifest keeps those after"):
        choose_export(manifest, Path("r"), 1, CONFIG)
    with pytest.raises(JobFailedError, match="finished epochs 1 to 3; epoch 4 is not"):
        choose_export(manifest, Path("r"), 4, CONFIG)
    with pytest.raises(JobFailedError, match="run the job first"):
        choose_export(None, Path("r"), 1, CONFIG)
    warm = _manifest([0.7], [2], first=2)
    with pytest.raises(JobFailedError, match="finished epochs 2 to 2; epoch 1"):
        choose_export(warm, Path("r"), 1, CONFIG)


def test_version_names():
    assert version_name("auto", 4) == "epoch-4"
    assert version_name("none", 4) is None
    assert version_name("mine", 4) == "mine"


def test_a_warm_start_names_a_recorded_version(tmp_path):
    earlier = _manifest([0.7, 0.8], [1, 2])
    parts = {p: PartExport(f"m-{p}", f"f-{p}", "e1") for p in ("alice", "bob")}
    earlier.add_export("epoch-2", 2, parts)
    # Recorded before exports listed their files: refused, saying what to do.
    earlier.exports["old"] = {"epoch": 2, "parties": {"alice": "m", "bob": "m"}}
    write_manifest(tmp_path / "job-a", earlier)
    config = CONFIG.model_copy(
        update={"runs_dir": tmp_path, "init_job": "job-a", "init_version": "epoch-2"}
    )
    files = {"alice": "f-alice", "bob": "f-bob"}
    assert warm_start(config) == ModelVersion("job-a", "epoch-2", 2, "e1", files)
    with pytest.raises(ConfigError, match="'old' of job 'job-a' was exported before"):
        warm_start(config.model_copy(update={"init_version": "old"}))
    assert warm_start(CONFIG) is None
    with pytest.raises(ConfigError, match=r"recorded: \[.epoch-2., .old.\]\); export"):
        warm_start(config.model_copy(update={"init_version": "epoch-1"}))
    with pytest.raises(ConfigError, match="set epochs above 2"):
        warm_start(config.model_copy(update={"epochs": 2}))
    with pytest.raises(ConfigError, match=r"recorded: none"):
        warm_start(config.model_copy(update={"init_job": "job-z"}))


class _Party:
    """A party that holds some versions already, from the export ``held``."""

    def __init__(self, held: dict[str, str]) -> None:
        self.held = held
        self.calls: list[tuple[str, str]] = []

    def export_model(self, job, version, epoch, metrics, export_id) -> PartExport:
        self.calls.append((version, export_id))
        return PartExport("m", f"f-{version}", self.held.get(version, export_id))


def test_an_export_is_one_export_id_and_a_version_held_from_another_is_left():
    record = EpochRecord(2, 0.5, 0.6, 0.5, 0.7, 0.5, 0.5, 1, 1, 1)
    alice, bob = _Party({"epoch-2": "old"}), _Party({})
    clients = {"alice": alice, "bob": bob}
    name, parts = export_everywhere(clients, "job-b", "epoch-2", record, 10, True)
    assert name == "epoch-2.2"
    assert {p.export_id for p in parts.values()} == {bob.calls[0][1]}
    # One export id for the export, whatever versions it tried.
    assert len({i for c in (alice.calls, bob.calls) for _, i in c}) == 1
    with pytest.raises(JobFailedError, match="alice from export old, bob from"):
        export_everywhere(clients, "job-b", "epoch-2", record, 10, False)
    # An export tried again names the id it used.
    fresh = {"alice": _Party({}), "bob": _Party({})}
    _, parts = export_everywhere(fresh, "job-b", "v", record, 10, export_id="e9")
    assert {p.export_id for p in parts.values()} == {"e9"}
