"""Fault tests: kill -9 a party or the coordinator mid-epoch, or lose the newest
checkpoint at a party; the job recovers (or resumes) from the newest checkpoint
every party holds and ends with bit-identical weights, the same per-epoch
metrics and the same traffic record as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from coordinator.local import start_party
from tests.support import (
    assign_addresses,
    metrics,
    party_status,
    start_coordinator,
    write_configs,
)

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"


def _federation(folder: Path, data: Path):
    files = write_configs(folder, data)
    addresses = assign_addresses(files)
    files.edit(
        "job",
        epochs=2,
        predict="none",
        report_every=10,
        # Every checkpoint is kept, so a mismatch can be located (see _same_as).
        checkpoint={"every_steps": 40, "keep": 100},
        recovery={"max_attempts": 3, "timeout": 120},
    )
    return files, addresses


def _wait_for_step(address: str, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = party_status(address)
        if status and status.state == "training" and status.step >= step:
            return
        time.sleep(0.1)
    pytest.fail(f"training never reached step {step}")


def _outcome(files) -> tuple[dict[str, dict[str, np.ndarray]], list[dict], dict]:
    """Each party's final checkpoint arrays, the history and the traffic."""
    runs = files.folder / "runs"
    manifest = json.loads((runs / JOB / "manifest.json").read_text())
    assert manifest["finished"]
    last = manifest["checkpoints"][-1]["checkpoint_id"]
    weights = {}
    for party in ("alice", "bob"):
        path = runs / party / JOB / "checkpoints" / f"checkpoint-{last:08d}.npz"
        with np.load(path) as stored:
            weights[party] = {k: stored[k] for k in stored.files}
    history = json.loads((runs / JOB / "history.json").read_text())
    traffic = json.loads((runs / JOB / "traffic.json").read_text())
    return weights, history, traffic


def _stop(job: subprocess.Popen | None, parties: dict) -> None:
    if job is not None and job.poll() is None:
        job.kill()
        job.wait()
    for party in parties.values():
        party.stop()


def _start(files, name: str, log: Path):
    return start_party(getattr(files, name), log)


@pytest.fixture(scope="module")
def reference(small_data, tmp_path_factory):
    """The uninterrupted run."""
    files, _ = _federation(tmp_path_factory.mktemp("reference"), small_data)
    logs = files.folder / "logs"
    parties = {n: _start(files, n, logs / f"{n}.log") for n in ("bob", "alice")}
    try:
        job = start_coordinator(files.job)
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]
    finally:
        for party in parties.values():
            party.stop()
    return (*_outcome(files), files.folder)


def _first_divergence(reference_folder: Path, folder: Path) -> str:
    """The first checkpoint (by id) whose arrays differ between two runs."""
    for party in ("alice", "bob"):
        theirs = reference_folder / "runs" / party / JOB / "checkpoints"
        ours = folder / "runs" / party / JOB / "checkpoints"
        for path in sorted(theirs.glob("checkpoint-*.npz")):
            if not (ours / path.name).exists():
                continue
            with np.load(path) as want, np.load(ours / path.name) as got:
                for key in want.files:
                    if not np.array_equal(want[key], got[key]):
                        return f"{party} {path.name} {key} (position {got['position']})"
    return "no stored checkpoint differs"


def _same_as(reference, files) -> None:
    """Bit-identical weights and optimizer state, equal metrics and traffic."""
    weights, history, traffic = _outcome(files)
    want_weights, want_history, want_traffic, reference_folder = reference
    for party in ("alice", "bob"):
        assert weights[party].keys() == want_weights[party].keys()
        for key, value in want_weights[party].items():
            if not np.array_equal(weights[party][key], value):
                where = _first_divergence(reference_folder, files.folder)
                raise AssertionError(
                    f"{party} {key} differs; first divergence: {where}; logs and "
                    f"checkpoints under {files.folder}"
                )
    assert [r["epoch"] for r in history] == [r["epoch"] for r in want_history]
    for got, want in zip(history, want_history, strict=True):
        assert metrics(got) == metrics(want)
    # Each step's traffic is counted once, however often it ran.
    assert traffic["peer"] == want_traffic["peer"]
    assert traffic["control"] == want_traffic["control"]


@pytest.mark.parametrize("victim", ["alice", "bob"])
def test_party_killed_mid_epoch_is_recovered(reference, small_data, tmp_path, victim):
    files, addresses = _federation(tmp_path, small_data)
    logs = tmp_path / "logs"
    parties = {n: _start(files, n, logs / f"{n}.log") for n in ("bob", "alice")}
    job = None
    try:
        job = start_coordinator(files.job)
        at = random.randint(10, 130)  # any step of the first epoch (141 steps)
        _wait_for_step(addresses["bob"], at)
        os.kill(parties[victim].process.pid, signal.SIGKILL)
        parties[victim].process.wait()
        time.sleep(1.0)
        parties[victim] = _start(files, victim, logs / f"{victim}-again.log")
        _, err = job.communicate(timeout=300)
        (logs / "coordinator.log").write_text(err)
        assert job.returncode == 0, err[-3000:]
    finally:
        _stop(job, parties)
    [(checkpoint, step)] = re.findall(
        r"recovering from checkpoint (\d+) \(epoch 1, step (\d+)\)", err
    )
    # Checkpoint k holds step 40 k; the last one before the kill is restored.
    assert int(step) == 40 * int(checkpoint) and at - 40 < int(step) <= at + 20, at
    [seconds] = re.findall(r"recovered in ([0-9.]+) s", err)
    print(f"{victim} killed after step {at}: recovered in {seconds} s")
    _same_as(reference, files)


def _lose_newest_checkpoints(folder: Path) -> None:
    """bob's newest checkpoint file is deleted, alice's one before corrupted."""
    runs = folder / "runs"
    manifest = json.loads((runs / JOB / "manifest.json").read_text())
    assert [c["checkpoint_id"] for c in manifest["checkpoints"]] == [0, 1, 2]
    (runs / "bob" / JOB / "checkpoints" / "checkpoint-00000002.npz").unlink()
    corrupted = runs / "alice" / JOB / "checkpoints" / "checkpoint-00000001.npz"
    corrupted.write_bytes(corrupted.read_bytes()[:-10] + b"0123456789")


@pytest.mark.parametrize("lose", [False, True], ids=["intact", "checkpoints-lost"])
def test_coordinator_killed_mid_epoch_resumes_with_the_same_command(
    reference, small_data, tmp_path, lose
):
    """The coordinator dies; the same command resumes the job. With its newest
    checkpoints lost (one missing at bob, the one before changed at alice), it
    resumes from the newest one both hold intact."""
    files, addresses = _federation(tmp_path, small_data)
    logs = tmp_path / "logs"
    parties = {n: _start(files, n, logs / f"{n}.log") for n in ("bob", "alice")}
    try:
        first = start_coordinator(files.job)
        _wait_for_step(addresses["bob"], 100)
        first.kill()
        first.wait()
        if lose:
            _lose_newest_checkpoints(files.folder)
        again = start_coordinator(files.job)
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err[-3000:]
    finally:
        for party in parties.values():
            party.stop()
    assert "resuming job deepfm-ml1m from checkpoint 2 (epoch 1, step 80)" in err
    if lose:
        assert "checkpoint 2 (epoch 1, step 80) cannot be restored" in err
        assert "checkpoint-00000002.npz; the party's output_dir must be kept" in err
        assert "checkpoint 1 (epoch 1, step 40) cannot be restored" in err
        assert "the file changed since it was saved" in err
        assert "went back to checkpoint 0 (epoch 1, step 0)" in err
    _same_as(reference, files)


def test_party_frozen_for_a_moment_is_noticed_and_recovered(
    reference, small_data, tmp_path
):
    """bob stops (SIGSTOP) long enough for the stall limit, then goes on."""
    files, addresses = _federation(tmp_path, small_data)
    files.edit("job", rpc_timeout=8)
    logs = tmp_path / "logs"
    timeouts = ("--peer-timeout", "5")
    parties = {
        n: start_party(getattr(files, n), logs / f"{n}.log", extra_args=timeouts)
        for n in ("bob", "alice")
    }
    job = None
    try:
        job = start_coordinator(files.job)
        _wait_for_step(addresses["bob"], 60)
        os.kill(parties["bob"].process.pid, signal.SIGSTOP)
        time.sleep(12)
        os.kill(parties["bob"].process.pid, signal.SIGCONT)
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]
    finally:
        _stop(job, parties)
    assert "recovering from checkpoint" in err
    _same_as(reference, files)
