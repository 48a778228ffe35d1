"""One coordinator per job: a second one, on the same runs folder or on another
one against the same parties, is refused at once with a message naming the
first, and the first one's run goes on untouched. A lock left by a coordinator
that died is taken over."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from splitrec.common.errors import JobFailedError
from splitrec.coordinator.local import start_local_parties, start_party
from splitrec.coordinator.ownership import LOCK_FILE
from tests.support import (
    demo_args,
    party_status,
    run_module,
    start_coordinator,
)

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"


def _state(address: str) -> tuple[str, str]:
    status = party_status(address)
    return (status.state, status.job_owner) if status else ("", "")


@pytest.fixture
def federation(party_files):
    party_files.edit("job", epochs=2, predict="none")
    parties = start_local_parties(party_files, party_files.folder / "logs")
    try:
        yield party_files, {n: p.address for n, p in parties.items()}
    finally:
        for party in parties.values():
            party.stop()


def _wait_for_training(address: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state, owner = _state(address)
        if state == "training":
            return owner
        time.sleep(0.1)
    pytest.fail("training never started")


def test_a_second_coordinator_is_refused_and_the_first_finishes(federation, tmp_path):
    files, addresses = federation
    first = start_coordinator(files.job)
    try:
        owner = _wait_for_training(addresses["bob"])
        # The same runs folder: refused by the lock, before it contacts anyone.
        same = start_coordinator(files.job)
        _, same_err = same.communicate(timeout=60)
        # A demo of the same job is refused before it starts any party.
        demo = run_module(demo_args(files), timeout=60)
        # Another runs folder, the same job at the same parties: refused by them.
        other = start_coordinator(files.job, "--runs-dir", str(tmp_path / "other-runs"))
        _, other_err = other.communicate(timeout=120)
        _, first_err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    assert first.returncode == 0, first_err[-3000:]
    assert "job finished" not in same_err
    assert same.returncode == 1, same_err[-2000:]
    assert f"is in use by coordinator pid {first.pid} on" in same_err
    assert LOCK_FILE in same_err
    assert demo.returncode == 1, demo.stderr[-2000:]
    assert f"is in use by coordinator pid {first.pid} on" in demo.stderr
    assert "is up at" not in demo.stderr  # no party was started
    assert other.returncode == 1, other_err[-2000:]
    assert f"coordinator pid {first.pid} on {socket.gethostname()}" in other_err
    assert "a second coordinator may not drive it at the same time" in other_err
    assert f"coordinator pid {first.pid}" in owner
    # The first run was not disturbed: no recovery, every epoch recorded.
    assert "recovering" not in first_err
    history = json.loads((files.folder / "runs" / JOB / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]


def test_a_lock_left_by_a_dead_coordinator_is_taken_over(federation):
    files, _ = federation
    lock = files.folder / "runs" / JOB / LOCK_FILE
    lock.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "host": socket.gethostname(), "started": "earlier"}
    lock.write_text(json.dumps(stale))

    result = run_module(
        ["splitrec.coordinator", "run", "--job", str(files.job)], timeout=300
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"from coordinator pid {dead.pid} on" in result.stderr
    assert "stopped without releasing it" in result.stderr
    assert not lock.exists()  # removed at the end


def test_a_second_server_on_the_same_output_dir_is_refused(party_files, tmp_path):
    first = start_party(party_files.bob, tmp_path / "bob.log", listen="127.0.0.1:0")
    try:
        with pytest.raises(JobFailedError) as caught:
            start_party(party_files.bob, tmp_path / "bob-2.log", listen="127.0.0.1:0")
    finally:
        first.stop()
    message = str(caught.value)
    assert f"is in use by party bob pid {first.process.pid} on" in message
    assert "give each party server its own output_dir" in message
