"""The manifest names a checkpoint only once every party wrote it."""

from __future__ import annotations

import pytest

from common.config import JobConfig, JobPartyConfig
from common.errors import JobFailedError, PeerError
from coordinator.job import JobDriver
from coordinator.manifest import (
    CheckpointEntry,
    Manifest,
    read_manifest,
    write_manifest,
)


class Reply:
    def __init__(self, digest: str) -> None:
        self.digest = digest


class FakeClient:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.kept: list[int] | None = None

    def save_checkpoint(self, job: str, checkpoint_id: int, epoch: int, step: int):
        if self.fail:
            raise PeerError(f"party {self.name}: SaveCheckpoint failed: disk full")
        return Reply(f"{self.name}-{checkpoint_id}")

    def commit_checkpoints(self, job: str, keep: list[int]) -> None:
        self.kept = keep

    def close(self) -> None:
        pass


def _driver(tmp_path, keep: int = 2) -> JobDriver:
    config = JobConfig(
        job="j",
        parties=(JobPartyConfig("alice", "a:1"), JobPartyConfig("bob", "b:1")),
        label_party="bob",
        runs_dir=tmp_path,
        keep_checkpoints=keep,
    )
    driver = JobDriver(config)
    for client in driver.clients.values():
        client.close()
    return driver


def test_checkpoint_enters_the_manifest_after_every_party_wrote_it(tmp_path):
    driver = _driver(tmp_path)
    driver.clients = {"alice": FakeClient("alice"), "bob": FakeClient("bob")}
    manifest = Manifest("j", "print")
    for step in (0, 10, 20):
        driver._checkpoint(manifest, 0, step, [])
    stored = read_manifest(tmp_path / "j")
    assert [(e.checkpoint_id, e.step) for e in stored.checkpoints] == [(1, 10), (2, 20)]
    assert stored.checkpoints[-1].digests == {"alice": "alice-2", "bob": "bob-2"}
    assert driver.clients["alice"].kept == [1, 2]


def test_a_failed_write_leaves_the_manifest_as_it_was(tmp_path):
    driver = _driver(tmp_path)
    driver.clients = {"alice": FakeClient("alice"), "bob": FakeClient("bob")}
    manifest = Manifest("j", "print")
    driver._checkpoint(manifest, 0, 0, [])
    before = (tmp_path / "j" / "manifest.json").read_text()
    driver.clients["bob"].fail = True
    with pytest.raises(PeerError, match="disk full"):
        driver._checkpoint(manifest, 0, 10, [])
    assert (tmp_path / "j" / "manifest.json").read_text() == before
    assert read_manifest(tmp_path / "j").latest.step == 0


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
