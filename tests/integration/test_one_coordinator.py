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

import grpc
import pytest

from coordinator.local import project_env, start_party
from coordinator.ownership import LOCK_FILE
from splitrec.v1 import control_pb2, control_pb2_grpc
from tests.support import ROOT, assign_addresses

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"


def _coordinator(job, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "coordinator", "run", "--job", str(job), *args],
        cwd=ROOT,
        env=project_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _state(address: str) -> tuple[str, str]:
    try:
        with grpc.insecure_channel(address) as channel:
            stub = control_pb2_grpc.ControlStub(channel)
            status = stub.GetStatus(control_pb2.StatusRequest(), timeout=5)
            return status.state, status.job_owner
    except grpc.RpcError:
        return "", ""


@pytest.fixture
def federation(party_files):
    addresses = assign_addresses(party_files)
    party_files.edit("job", epochs=2, predict="none")
    logs = party_files.folder / "logs"
    parties = {
        n: start_party(getattr(party_files, n), logs / f"{n}.log") for n in addresses
    }
    try:
        yield party_files, addresses
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
    first = _coordinator(files.job)
    try:
        owner = _wait_for_training(addresses["bob"])
        # The same runs folder: refused by the lock, before it contacts anyone.
        same = _coordinator(files.job)
        _, same_err = same.communicate(timeout=60)
        # Another runs folder, the same job at the same parties: refused by them.
        other = _coordinator(files.job, "--runs-dir", str(tmp_path / "other-runs"))
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

    result = subprocess.run(
        [sys.executable, "-m", "coordinator", "run", "--job", str(files.job)],
        cwd=ROOT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"from coordinator pid {dead.pid} on" in result.stderr
    assert "stopped without releasing it" in result.stderr
    assert lock.read_text() == ""  # released at the end
