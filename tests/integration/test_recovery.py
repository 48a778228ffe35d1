"""Fault tests: kill -9 a party or the coordinator mid-epoch, or lose the newest
checkpoint at a party; the job recovers (or resumes) from the newest checkpoint
every party holds and ends with bit-identical weights, the same per-epoch
metrics and the same traffic record as a run that was never interrupted: any
difference fails (see ``tests.divergence``)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from splitrec.coordinator.local import start_local_parties, start_party
from tests.divergence import RunState, assert_same, run_state
from tests.replay import Replay
from tests.support import (
    start_coordinator,
    wait_for_training_step,
    write_configs,
)

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"
PARTIES = ("alice", "bob")
BATCH = 128


def _federation(folder: Path, data: Path):
    files = write_configs(folder, data)
    files.edit(
        "job",
        epochs=2,
        predict="none",
        report_every=10,
        # Every checkpoint is kept, so a mismatch can be located.
        checkpoint={"every_steps": 40, "keep": 100},
        recovery={"max_attempts": 3, "timeout": 120},
    )
    return files


def _stop(job: subprocess.Popen | None, parties: dict) -> None:
    if job is not None and job.poll() is None:
        job.kill()
        job.wait()
    for party in parties.values():
        party.stop()


def _start(files, name: str, log: Path):
    """``name`` started again from its config, at the address it had."""
    return start_party(getattr(files, name), log)


def _state(files) -> RunState:
    manifest = json.loads((files.folder / "runs" / JOB / "manifest.json").read_text())
    assert manifest["finished"]
    return run_state(files.folder, JOB, PARTIES)


@pytest.fixture(scope="module")
def reference(small_data, tmp_path_factory) -> RunState:
    """The uninterrupted run."""
    files = _federation(tmp_path_factory.mktemp("reference"), small_data)
    _run_to_end(files)
    return _state(files)


def _run_to_end(files) -> None:
    """Starts the parties and runs the job to its end, uninterrupted."""
    parties = start_local_parties(files, files.folder / "logs")
    try:
        job = start_coordinator(files.job)
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]
    finally:
        for party in parties.values():
            party.stop()


def _assert_same(reference: RunState, files) -> None:
    """Nothing differs from the uninterrupted run: weights and optimizer state
    bit for bit at every checkpoint both hold (the last one included),
    per-epoch metrics, and the traffic record (each step's traffic counted
    once, however often it ran)."""
    state = _state(files)
    for party in PARTIES:
        last = max(n for n in reference.checkpoints if n.startswith(party + "/"))
        assert last in state.checkpoints, f"{files.folder} lacks {last}"
    assert_same(reference, state, BATCH, same_checkpoints=False)


def _kill_and_recover(files, victim: str, at: int) -> str:
    """Runs the job, kills ``victim`` with SIGKILL once bob trained step ``at``
    and starts it again; returns the coordinator's log of the recovered run."""
    logs = files.folder / "logs"
    parties = start_local_parties(files, logs)
    job = None
    try:
        job = start_coordinator(files.job)
        wait_for_training_step(parties["bob"].address, at)
        os.kill(parties[victim].process.pid, signal.SIGKILL)
        parties[victim].process.wait()
        time.sleep(1.0)
        parties[victim] = _start(files, victim, logs / f"{victim}-again.log")
        _, err = job.communicate(timeout=300)
        (logs / "coordinator.log").write_text(err)
        assert job.returncode == 0, err[-3000:]
    finally:
        _stop(job, parties)
    return err


# The label party here; a feature party killed mid-epoch is recovered in
# test_every_network_strategy_recovers_and_its_plan_repeats_the_run.
@pytest.mark.parametrize("victim", ["bob"])
def test_party_killed_mid_epoch_is_recovered(reference, small_data, tmp_path, victim):
    # Any step of the first epoch (141 steps) that leaves the status calls time
    # to see it before the epoch ends.
    at = random.randint(10, 110)
    files = _federation(tmp_path, small_data)
    err = _kill_and_recover(files, victim, at)
    [(checkpoint, step)] = re.findall(
        r"recovering from checkpoint (\d+) \(epoch 1, step (\d+)\)", err
    )
    # Checkpoint k holds step 40 k; the last one before the kill is restored.
    assert int(step) == 40 * int(checkpoint) and at - 40 < int(step) <= at + 20
    [seconds] = re.findall(r"recovered in ([0-9.]+) s", err)
    print(f"{victim} killed after step {at}: recovered in {seconds} s")
    _assert_same(reference, files)


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

    files = _federation(tmp_path, small_data)
    parties = start_local_parties(files, files.folder / "logs")
    try:
        first = start_coordinator(files.job)
        wait_for_training_step(parties["bob"].address, 100)
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
    _assert_same(reference, files)


def test_party_frozen_for_a_moment_is_noticed_and_recovered(
    reference, small_data, tmp_path
):
    """bob stops (SIGSTOP) long enough for the stall limit, then goes on."""

    files = _federation(tmp_path, small_data)
    files.edit("job", rpc_timeout=8)
    timeouts = ("--peer-timeout", "5")
    parties = start_local_parties(files, files.folder / "logs", extra_args=timeouts)
    job = None
    try:
        job = start_coordinator(files.job)
        wait_for_training_step(parties["bob"].address, 60)
        os.kill(parties["bob"].process.pid, signal.SIGSTOP)
        time.sleep(12)
        os.kill(parties["bob"].process.pid, signal.SIGCONT)
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]
    finally:
        _stop(job, parties)
    assert "recovering from checkpoint" in err
    _assert_same(reference, files)


def test_a_replay_reproduces_every_window_and_finds_one_that_went_astray(
    reference, tmp_path
):
    """The uninterrupted run replays bit for bit in one process; a copy whose
    checkpoint 3 has one weight one ulp off is found astray in that window."""
    assert Replay(reference.folder).first_astray() is None
    copy = tmp_path / "copy"
    shutil.copytree(reference.folder, copy)
    path = copy / "runs" / "alice" / JOB / "checkpoints" / "checkpoint-00000003.npz"
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    key = "model/alice_base/deep_0/kernel"
    arrays[key].flat[5] = np.nextafter(arrays[key].flat[5], np.float32(np.inf))
    np.savez(path, **arrays)
    astray = Replay(copy).first_astray()
    assert astray == (
        f"alice's {key} after replaying epoch 0 steps 80-119 from checkpoint 2"
    )


def test_every_network_strategy_recovers_and_its_plan_repeats_the_run(
    small_data, tmp_path
):
    """Async groups, an auto depth and predicted weights together, with MID's
    bottleneck at alice (its sampled codes, its KL term): alice is killed
    mid-epoch and the job recovers; a run given the depths the recovered run
    took (alice's plan) ends with the same weights, optimizer state, metrics
    and traffic at every party."""
    strategy = {
        "name": "async",
        "local_steps": 4,
        "pipeline_size": "auto",
        "max_pipeline_size": 8,
        "warmup_steps": 32,
        "compensation": "predict",
    }
    recovered = _federation(tmp_path / "recovered", small_data)
    mid = {"mid": {"weight": 0.01, "dim": 8}}
    recovered.edit("job", epochs=1, strategy=strategy, privacy=mid)
    err = _kill_and_recover(recovered, "alice", random.randint(50, 110))
    assert "recovering from checkpoint" in err
    kept = recovered.folder / "runs" / "alice" / JOB / "pipeline-depths.json"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"alice": json.loads(kept.read_text())}))

    repeated = _federation(tmp_path / "repeated", small_data)
    repeated.edit(
        "job", epochs=1, strategy={**strategy, "pipeline_plan": str(plan)}, privacy=mid
    )
    _run_to_end(repeated)
    assert_same(_state(recovered), _state(repeated), BATCH, same_checkpoints=False)
