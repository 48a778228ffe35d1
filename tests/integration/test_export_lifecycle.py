"""An exported model version is all or nothing: a party killed while it writes
its part comes back without the half-written folder, the coordinator exports
the version again, and the manifest names it with every party's digest. A
later run of the job, started afresh with other settings, keeps the version.

One job of one epoch, trained twice."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from splitrec.config.party import load_party_config
from splitrec.coordinator.local import LocalParty, start_party
from tests.support import run_module, start_coordinator

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"
PARTIES = ("alice", "bob")


def _start_both(files, logs: Path) -> dict[str, LocalParty]:
    """Bob, then alice, on ports of their own choosing; every config names
    the ports they got."""
    bob = start_party(files.bob, logs / "bob.log", listen="127.0.0.1:0")
    files.point_alice_at(bob.address)
    alice = start_party(files.alice, logs / "alice.log", listen="127.0.0.1:0")
    files.set_job_addresses(alice.address, bob.address)
    return {"alice": alice, "bob": bob}


def _staging_appears(folder: Path, job, timeout: float = 300) -> list[Path]:
    """Waits until an export writes into ``folder`` (a party's model folder)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and job.poll() is None:
        found = sorted(folder.glob(".epoch-1-*"))
        if found:
            return found
        time.sleep(0.01)
    pytest.fail(f"no export began in {folder} (coordinator exit code {job.poll()})")


def _exported(files, version: str) -> dict:
    """The manifest's record of ``version``, checked against every party's
    folder: its digest there, no folder left half-written beside it."""
    manifest = json.loads((files.folder / "runs" / JOB / "manifest.json").read_text())
    recorded = manifest["exports"][version]
    assert set(recorded["parties"]) == set(PARTIES)
    for name in PARTIES:
        model = load_party_config(getattr(files, name)).output_dir / JOB / "model"
        described = json.loads((model / version / "model.json").read_text())
        assert described["model_digest"] == recorded["parties"][name]
        assert not list(model.glob(".*")), name
    return manifest["exports"]


def test_an_export_survives_a_killed_party_and_later_runs_keep_it(party_files):
    files = party_files
    files.edit(
        "job",
        epochs=1,
        export="auto",
        predict="none",
        recovery={"max_attempts": 3, "timeout": 120},
    )
    for name in PARTIES:
        files.edit(name, datasets={"again": files.read(name)["data"]["path"]})
    logs = files.folder / "logs"
    bob_output = load_party_config(files.bob).output_dir
    parties = _start_both(files, logs)
    job = None
    try:
        job = start_coordinator(files.job)
        _staging_appears(bob_output / JOB / "model", job)
        os.kill(parties["bob"].process.pid, signal.SIGKILL)
        parties["bob"].process.wait()
        cut_short = sorted((bob_output / JOB / "model").glob(".epoch-1-*"))
        # What an export of another job cut short long ago.
        older = bob_output / "older-job" / "model" / ".epoch-3-x1y2"
        (older / "saved_model").mkdir(parents=True)
        parties["bob"] = start_party(
            files.bob, logs / "bob-again.log", listen=parties["bob"].address
        )
        _, err = job.communicate(timeout=600)
        (logs / "coordinator.log").write_text(err)
        assert job.returncode == 0, err[-3000:]
        assert "while exporting; trying again" in err
        started = (logs / "bob-again.log").read_text()
        for leftover in (*cut_short, older):
            assert f"removed {leftover}, left by an export cut short" in started
            assert not leftover.exists()
        first = _exported(files, "epoch-1")["epoch-1"]
        # Alice's part, whole before bob failed or written on the retry, was
        # written once: asked again, she found it and answered its digest.
        written = (logs / "alice.log").read_text().count("exported model version")
        assert written == 1

        # Another batch size trains another model: the automatic version
        # becomes epoch-1.2, and the manifest keeps epoch-1 as it was.
        again = run_module(
            ["splitrec.coordinator", "run", "--job", str(files.job), "--fresh"]
            + ["--batch-size", "256"]
        )
        assert again.returncode == 0, again.stderr[-3000:]
        exports = _exported(files, "epoch-1.2")
        assert exports["epoch-1"] == first
        assert exports["epoch-1.2"]["parties"]["bob"] != first["parties"]["bob"]
        scored = run_module(
            ["splitrec.coordinator", "predict", "--job", str(files.job)]
            + ["--model", "epoch-1", "--dataset", "again"]
        )
        assert scored.returncode == 0, scored.stderr[-3000:]
    finally:
        if job is not None and job.poll() is None:
            job.kill()
            job.wait()
        codes = [party.stop() for party in parties.values()]
    assert codes == [0, 0]
