"""The job driver's exports: retried as a recovery is when a party fails during
one, named by the manifest only once every party holds its part, and kept by
later runs of the job."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from splitrec.common.errors import JobFailedError, PeerError
from splitrec.common.history import EpochRecord
from splitrec.config.job import JobConfig
from splitrec.config.jobspec import PartExport
from splitrec.config.party import JobPartyConfig
from splitrec.coordinator import job as job_module
from splitrec.coordinator.handshake import PreparedJob
from splitrec.coordinator.job import JobDriver
from splitrec.coordinator.manifest import (
    CheckpointEntry,
    Manifest,
    read_manifest,
    recorded_exports,
    write_manifest,
)
from tests.outputs import job_spec

JOB = "job-b"
FINAL = CheckpointEntry(7, 2, 0, {"alice": "ca", "bob": "cb"})
RECORD = EpochRecord(2, 0.5, 0.6, 0.5, 0.7, 0.5, 0.5, 1, 1, 1)
PREPARED = PreparedJob(job_spec(job_id=JOB), 90, 10, 3)
UNAVAILABLE = PeerError("party bob is unavailable", "UNAVAILABLE", "ExportModel")


class FakeParty:
    """A party's client that answers ``ExportModel`` from a script: each
    entry is a model digest to report (its file list's digest is ``f`` and
    the same) or an error to raise."""

    def __init__(self, name: str, answers: list[str | Exception]) -> None:
        self.name = name
        self.answers = answers
        self.asked: list[str] = []
        self.export_ids: list[str] = []
        self.before: list[dict] = []

    def export_model(
        self, job_id: str, version: str, epoch: int, metrics, export_id: str
    ) -> PartExport:
        self.asked.append(version)
        self.export_ids.append(export_id)
        manifest = read_manifest(Path(self.run_dir))
        self.before.append(dict(manifest.exports) if manifest else {})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return PartExport(answer, "f" + answer, export_id)

    def close(self) -> None:
        pass


class FakeCheckpoints:
    def __init__(self, failure: Exception | None = None) -> None:
        self.restored: list[CheckpointEntry] = []
        self.saved: list[tuple[int, int]] = []
        self.failure = failure

    def restore_entry(self, entry: CheckpointEntry) -> None:
        self.restored.append(entry)
        if self.failure is not None:
            raise self.failure

    def save(self, manifest: Manifest, epoch: int, step: int, records) -> None:
        self.saved.append((epoch, step))


def _driver(
    tmp_path: Path, answers: dict[str, list], fresh: bool = False, **changes: object
) -> tuple[JobDriver, list[float]]:
    config = JobConfig(
        JOB,
        (JobPartyConfig("alice", "127.0.0.1:1"), JobPartyConfig("bob", "127.0.0.1:1")),
        "bob",
        epochs=2,
        runs_dir=tmp_path,
        source=Path("job.yaml"),
    )
    driver = JobDriver(config.model_copy(update=changes), fresh=fresh)
    driver.run_dir.mkdir(parents=True, exist_ok=True)
    for client in driver.clients.values():
        client.close()
    driver.clients = {n: FakeParty(n, a) for n, a in answers.items()}
    for party in driver.clients.values():
        party.run_dir = driver.run_dir
    driver.checkpoints = FakeCheckpoints()
    waits: list[float] = []

    def handshake(wait: float) -> PreparedJob:
        waits.append(wait)
        return PREPARED

    driver._handshake = handshake
    return driver, waits


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(job_module.time, "sleep", lambda seconds: None)


def _manifest(**changes: object) -> Manifest:
    return Manifest(JOB, "fp", [FINAL], [dataclasses.asdict(RECORD)], **changes)


def test_a_party_that_fails_during_an_export_is_awaited_and_asked_again(tmp_path):
    # Alice wrote her part before bob failed; bob restarted.
    driver, waits = _driver(
        tmp_path, {"alice": ["da", "da"], "bob": [UNAVAILABLE, "db"]}
    )
    manifest = _manifest()

    name = driver._export(PREPARED, manifest, [RECORD], RECORD.epoch)

    assert name == "epoch-2"
    parties = driver.clients
    assert parties["alice"].asked == parties["bob"].asked == ["epoch-2", "epoch-2"]
    # Not named while bob lacked his part.
    assert parties["bob"].before == [{}, {}]
    # One export id, the same when the parties are asked again.
    (export_id,) = set(parties["alice"].export_ids + parties["bob"].export_ids)
    assert read_manifest(driver.run_dir).exports == {
        "epoch-2": {
            "epoch": 2,
            "export_id": export_id,
            "parties": {"alice": "da", "bob": "db"},
            "files": {"alice": "fda", "bob": "fdb"},
        }
    }
    # Prepared again and the exported model restored before the second try.
    assert waits == [driver.config.recovery_timeout]
    assert driver.checkpoints.restored == [FINAL]


def test_an_export_names_nothing_when_the_retries_run_out(tmp_path):
    driver, _ = _driver(
        tmp_path,
        {"alice": ["da"] * 3, "bob": [UNAVAILABLE] * 3},
        max_recoveries=2,
    )

    with pytest.raises(JobFailedError, match="failed 3 times; last: party bob is"):
        driver._export(PREPARED, _manifest(), [RECORD], RECORD.epoch)

    assert read_manifest(driver.run_dir) is None
    assert len(driver.clients["bob"].asked) == 3


def test_a_version_held_with_another_model_is_not_retried(tmp_path):
    taken = PeerError("model version 'mine' already exists", "ALREADY_EXISTS")
    taken.permanent = True
    driver, waits = _driver(tmp_path, {"alice": ["da"], "bob": [taken]}, export="mine")

    with pytest.raises(JobFailedError, match="Set 'export' in job.yaml to another"):
        driver._export(PREPARED, _manifest(), [RECORD], RECORD.epoch)

    assert driver.clients["bob"].asked == ["mine"]
    assert waits == [] and driver.checkpoints.restored == []


def test_a_command_line_export_restores_its_checkpoint_first(tmp_path):
    driver, _ = _driver(tmp_path, {"alice": ["da"], "bob": ["db"]})
    manifest = _manifest()

    found = driver._exporting(manifest, FINAL, lambda: "exported")

    assert found == "exported"
    assert driver.checkpoints.restored == [FINAL]


def test_an_export_whose_checkpoint_a_party_lost_ends_at_once(tmp_path):
    driver, _ = _driver(tmp_path, {})
    lost = PeerError("party bob: checkpoint 7 is missing", "DATA_LOSS")
    driver.checkpoints = FakeCheckpoints(lost)

    with pytest.raises(JobFailedError, match=r"checkpoint 7 \(after epoch 2\)"):
        driver._exporting(_manifest(), FINAL, lambda: "exported")

    assert driver.checkpoints.restored == [FINAL]


EARLIER = {"epoch-1": {"epoch": 1, "parties": {"alice": "a1", "bob": "b1"}}}


@pytest.mark.parametrize("fresh", [True, False])
def test_a_new_run_keeps_the_versions_earlier_runs_exported(tmp_path, fresh):
    driver, _ = _driver(tmp_path, {}, fresh=fresh)
    write_manifest(driver.run_dir, _manifest(finished=True, exports=dict(EARLIER)))

    manifest, resumed = driver._open_manifest(PREPARED)

    assert not resumed
    assert manifest.exports == EARLIER
    assert manifest.checkpoints == [] and manifest.records == []
    assert driver.checkpoints.saved == [(0, 0)]


def test_an_unreadable_manifest_records_no_versions(tmp_path, caplog):
    (tmp_path / "manifest.json").write_text("{cut short")
    with caplog.at_level(logging.WARNING):
        assert recorded_exports(tmp_path) == {}
    assert "the model versions it recorded are forgotten" in caplog.text
    assert recorded_exports(tmp_path / "absent") == {}
    write_manifest(tmp_path, _manifest(exports=dict(EARLIER)))
    assert recorded_exports(tmp_path) == EARLIER
