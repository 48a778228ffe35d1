"""SIGTERM during training: the party exits 0, the job stops cleanly everywhere,
and the federation runs the next job once the party is back."""

from __future__ import annotations

import time

import pytest

from splitrec.coordinator.local import start_local_parties, start_party
from tests.support import party_status, start_coordinator

pytestmark = pytest.mark.slow


def test_sigterm_mid_epoch_stops_the_party_cleanly(party_files):
    # No recovery: the job stops at once (recovery is the fault tests' subject).
    party_files.edit("job", epochs=50, recovery={"max_attempts": 0})
    logs = party_files.folder / "logs"
    parties = start_local_parties(party_files, logs)
    address = {name: party.address for name, party in parties.items()}
    job = None
    try:
        job = start_coordinator(party_files.job)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = party_status(address["bob"])
            if status and status.state == "training" and status.step > 20:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"training did not start: {status}")

        assert parties["alice"].stop(timeout=30) == 0
        _, err = job.communicate(timeout=120)
        assert job.returncode == 1
        assert "party alice" in err and "Traceback" not in err

        # bob serves on and holds no running job.
        after = party_status(address["bob"])
        assert after.state != "training"
        alice_log = (logs / "alice.log").read_text()
        assert "stopping party alice" in alice_log and "Traceback" not in alice_log

        # alice back on the same address: the next job runs to the end.
        parties["alice"] = start_party(party_files.alice, logs / "alice-2.log")
        party_files.edit("job", epochs=1)
        job = start_coordinator(party_files.job, "--fresh")
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]
        assert "job finished: 1 epochs" in out
    finally:
        if job is not None and job.poll() is None:
            job.kill()
            job.wait()
        codes = {name: party.stop() for name, party in parties.items()}
    assert codes == {"alice": 0, "bob": 0}
