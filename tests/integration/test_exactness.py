"""Exact means exact: the same job run several times on a loaded machine (busy
processes on every core, a stream of extra connections and calls to both
parties) ends each time with bit-identical weights, optimizer state and
metrics, checkpoint by checkpoint; and each window of the run, replayed in one
process from its checkpoint, gives that run's next checkpoint bit for bit."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from splitrec.coordinator.local import start_local_parties
from splitrec.v1 import control_pb2, control_pb2_grpc
from tests.divergence import (
    RunState,
    difference,
    replayed,
    run_state,
)
from tests.replay import Replay
from tests.support import run_module, write_configs

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"
RUNS = 3
BATCH = 128
# Each busy process stops by itself after this long, whatever happens.
BUSY_SECONDS = 900


def _busy_processes(count: int) -> list[subprocess.Popen]:
    """Processes that keep every core busy whenever it is free: at the lowest
    priority, they jostle the parties' threads without starving the other
    tests that run beside this one."""
    script = (
        "import os, time\n"
        "os.nice(19)\n"
        f"end = time.monotonic() + {BUSY_SECONDS}\n"
        "while time.monotonic() < end:\n    pass\n"
    )
    return [subprocess.Popen([sys.executable, "-c", script]) for _ in range(count)]


def _hammer(addresses: list[str], stop: threading.Event, calls: list[int]) -> None:
    """Keeps 16 extra connections per party open and calls health and status
    over them until ``stop``."""
    channels = [grpc.insecure_channel(a) for a in addresses for _ in range(16)]
    try:
        while not stop.is_set():
            for channel in channels:
                try:
                    health = health_pb2_grpc.HealthStub(channel)
                    health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    control = control_pb2_grpc.ControlStub(channel)
                    control.GetStatus(control_pb2.StatusRequest(), timeout=2)
                    calls[0] += 1
                except grpc.RpcError:
                    pass
                if stop.is_set():
                    break
    finally:
        for channel in channels:
            channel.close()


def _run(folder: Path, data: Path) -> RunState:
    """One run of the job while the parties are hammered with extra calls."""
    files = write_configs(folder, data)
    files.edit(
        "job",
        epochs=2,
        predict="none",
        checkpoint={"every_steps": 40, "keep": 100},
    )
    parties = start_local_parties(files, folder / "logs")
    stop, calls = threading.Event(), [0]
    addresses = [party.address for party in parties.values()]
    hammer = threading.Thread(
        target=_hammer, args=(addresses, stop, calls), daemon=True
    )
    hammer.start()
    try:
        result = run_module(
            ["splitrec.coordinator", "run", "--job", str(files.job)], timeout=600
        )
    finally:
        stop.set()
        hammer.join(10)
        for party in parties.values():
            party.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    state = run_state(folder, JOB, ("alice", "bob"))
    assert len(state.checkpoints) == 2 * 9  # 0, 40, 80, 120, end of epoch 1, ...
    assert calls[0] > 100  # the extra connections really were busy
    return state


def test_repeated_runs_under_load_are_bit_identical(small_data, tmp_path):
    """Every run equals the first, bit for bit: no second chance."""
    busy = _busy_processes(2)
    try:
        states = [_run(tmp_path / f"run-{i}", small_data) for i in range(RUNS)]
        first = states[0]
        for state in states[1:]:
            found = difference(first, state, BATCH)
            assert found is None, f"{found} ({replayed(first, state)})"
        # What the parties computed over the network is what their step
        # functions compute in one process, window by window, bit for bit.
        assert Replay(first.folder).first_astray() is None
    finally:
        for process in busy:
            process.kill()
            process.wait()
