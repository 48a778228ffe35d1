"""Coordinated checkpoints: a checkpoint enters the manifest only once every
party wrote it; a restore falls back to the newest checkpoint every party still
holds intact."""

from __future__ import annotations

import pytest

from splitrec.common.errors import JobFailedError, PeerError
from splitrec.coordinator.checkpointing import Checkpoints
from splitrec.coordinator.manifest import Manifest, read_manifest


class Reply:
    def __init__(self, digest: str) -> None:
        self.digest = digest


class FakeClient:
    """A party that saves, commits and restores in memory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fail_save = False
        self.lost: set[int] = set()
        self.kept: list[int] | None = None
        self.restored: list[int] = []

    def save_checkpoint(self, job: str, checkpoint_id: int, epoch: int, step: int):
        if self.fail_save:
            raise PeerError(f"party {self.name}: SaveCheckpoint failed: disk full")
        return Reply(f"{self.name}-{checkpoint_id}")

    def commit_checkpoints(self, job: str, keep: list[int]) -> None:
        self.kept = keep

    def restore_checkpoint(self, job, checkpoint_id, epoch, step, digest) -> None:
        if checkpoint_id in self.lost:
            raise PeerError(
                f"party {self.name}: RestoreCheckpoint failed: DATA_LOSS: gone",
                "DATA_LOSS",
                "RestoreCheckpoint",
            )
        assert digest == f"{self.name}-{checkpoint_id}"
        self.restored.append(checkpoint_id)


def _setup(tmp_path, keep: int = 3):
    clients = {"alice": FakeClient("alice"), "bob": FakeClient("bob")}
    run_dir = tmp_path / "j"
    checkpoints = Checkpoints("j", run_dir, keep, clients)
    return clients, checkpoints, run_dir


def test_checkpoint_enters_the_manifest_after_every_party_wrote_it(tmp_path):
    clients, checkpoints, run_dir = _setup(tmp_path, keep=2)
    manifest = Manifest("j", "print")

    for step in (0, 10, 20):
        checkpoints.save(manifest, 0, step, [])

    stored = read_manifest(run_dir)
    assert [(e.checkpoint_id, e.step) for e in stored.checkpoints] == [(1, 10), (2, 20)]
    assert stored.checkpoints[-1].digests == {"alice": "alice-2", "bob": "bob-2"}
    assert clients["alice"].kept == [1, 2]


def test_a_failed_write_leaves_the_manifest_as_it_was(tmp_path):
    clients, checkpoints, run_dir = _setup(tmp_path)
    manifest = Manifest("j", "print")
    checkpoints.save(manifest, 0, 0, [])
    before = (run_dir / "manifest.json").read_text()
    clients["bob"].fail_save = True

    with pytest.raises(PeerError, match="disk full"):
        checkpoints.save(manifest, 0, 10, [])

    assert (run_dir / "manifest.json").read_text() == before
    assert read_manifest(run_dir).latest.step == 0


def test_restore_falls_back_to_the_newest_checkpoint_every_party_holds(
    tmp_path, caplog
):
    clients, checkpoints, run_dir = _setup(tmp_path)
    manifest = Manifest("j", "print")
    for step in (0, 10, 20):
        checkpoints.save(manifest, 0, step, [])
    clients["bob"].lost = {2}
    clients["alice"].lost = {1}

    entry = checkpoints.restore(manifest)

    assert entry.checkpoint_id == 0
    assert clients["alice"].restored[-1] == clients["bob"].restored[-1] == 0
    assert [e.checkpoint_id for e in read_manifest(run_dir).checkpoints] == [0]
    assert "checkpoint 2 (epoch 1, step 20) cannot be restored" in caplog.text
    assert "went back to checkpoint 0 (epoch 1, step 0)" in caplog.text


def test_restore_without_any_intact_checkpoint_is_fatal(tmp_path):
    clients, checkpoints, _ = _setup(tmp_path)
    manifest = Manifest("j", "print")
    checkpoints.save(manifest, 0, 0, [])
    clients["alice"].lost = {0}

    with pytest.raises(JobFailedError, match="no committed checkpoint") as caught:
        checkpoints.restore(manifest)

    assert caught.value.fatal
    assert "--fresh" in str(caught.value)
