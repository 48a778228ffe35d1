"""Exact means exact: the same job run several times on a loaded machine (busy
processes on every core, a stream of extra connections and calls to both
parties) ends each time with bit-identical weights, optimizer state and
metrics, checkpoint by checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.local import start_party
from splitrec.v1 import control_pb2, control_pb2_grpc
from tests.support import (
    assign_addresses,
    metrics,
    run_module,
    write_configs,
)

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"
RUNS = 3
# Each busy process stops by itself after this long, whatever happens.
BUSY_SECONDS = 900


def _busy_processes(count: int) -> list[subprocess.Popen]:
    script = (
        "import time\n"
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


def _run(folder: Path, data: Path) -> tuple[list, dict, dict, int]:
    files = write_configs(folder, data)
    addresses = assign_addresses(files)
    files.edit(
        "job",
        epochs=2,
        predict="none",
        checkpoint={"every_steps": 40, "keep": 100},
    )
    logs = folder / "logs"
    parties = {
        n: start_party(getattr(files, n), logs / f"{n}.log") for n in ("bob", "alice")
    }
    stop, calls = threading.Event(), [0]
    hammer = threading.Thread(
        target=_hammer, args=(list(addresses.values()), stop, calls), daemon=True
    )
    hammer.start()
    try:
        result = run_module(
            ["coordinator", "run", "--job", str(files.job)], timeout=600
        )
    finally:
        stop.set()
        hammer.join(10)
        for party in parties.values():
            party.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    runs = folder / "runs"
    history = json.loads((runs / JOB / "history.json").read_text())
    checkpoints = {}
    for party in ("alice", "bob"):
        for path in sorted((runs / party / JOB / "checkpoints").glob("*.npz")):
            with np.load(path) as stored:
                checkpoints[f"{party}/{path.name}"] = {
                    k: stored[k] for k in stored.files
                }
    traffic = json.loads((runs / JOB / "traffic.json").read_text())
    return history, checkpoints, traffic["peer"], calls[0]


def test_repeated_runs_under_load_are_bit_identical(small_data, tmp_path):
    busy = _busy_processes(2)
    try:
        runs = [_run(tmp_path / f"run-{i}", small_data) for i in range(RUNS)]
    finally:
        for process in busy:
            process.kill()
            process.wait()

    history, checkpoints, traffic, _ = runs[0]
    assert len(checkpoints) == 2 * 9  # 0, 40, 80, 120, end of epoch 1, ... per party
    for other_history, other_checkpoints, other_traffic, calls in runs[1:]:
        assert calls > 100  # the extra connections really were busy
        assert other_checkpoints.keys() == checkpoints.keys()
        for name, arrays in checkpoints.items():
            for key, value in arrays.items():
                assert np.array_equal(other_checkpoints[name][key], value), (name, key)
        for got, want in zip(other_history, history, strict=True):
            assert metrics(got) == metrics(want)
        assert other_traffic == traffic
