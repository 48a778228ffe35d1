"""Fail early, clearly, once: unusable folders and bad flags are refused at
start-up (exit code 2, the path or flag named, no traceback); a full disk ends
the job at once instead of using up every recovery attempt; a party that drops
out during the first PSI gets the same bounded retries as a later phase."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splitrec.coordinator.local import start_local_parties, start_party
from tests.support import (
    ROOT,
    alive,
    demo_args,
    descendants,
    start_coordinator,
)

pytestmark = pytest.mark.slow

ROOT_USER = os.geteuid() == 0


def _run(args: list[str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _mounted(folder: Path, options: str) -> tuple[str, ...]:
    """A command prefix: a private mount namespace with a tmpfs on ``folder``
    (root only; the mount never shows outside the command)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = f'mount -t tmpfs -o {options} tmpfs {folder} && exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, "sh")


def _read_only(folder: Path) -> tuple[str, ...]:
    if ROOT_USER:
        return _mounted(folder, "ro,size=64k")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o500)
    return ()


def test_coordinator_refuses_a_file_in_place_of_its_runs_folder(party_files):
    runs = party_files.folder / "runs-file"
    runs.write_text("oops")
    party_files.edit("job", runs_dir=str(runs))

    result = _run(["splitrec.coordinator", "run", "--job", str(party_files.job)])

    assert result.returncode == 2
    assert f"splitrec: {runs} ('runs_dir' in {party_files.job}) is not a folder" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_coordinator_refuses_a_read_only_runs_folder_named_by_its_flag(party_files):
    runs = party_files.folder / "read-only-runs"
    prefix = _read_only(runs)

    result = _run(
        [
            "splitrec.coordinator",
            "run",
            "--job",
            str(party_files.job),
            "--runs-dir",
            str(runs),
        ],
        prefix,
    )

    assert result.returncode == 2, result.stderr
    assert f"{runs} ('--runs-dir' in the flags) is not a writable folder" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("problem", ["file", "read-only"])
def test_party_server_refuses_an_unusable_output_dir(party_files, problem):
    output = party_files.folder / "party-output"
    prefix: tuple[str, ...] = ()
    if problem == "file":
        output.write_text("oops")
    else:
        prefix = _read_only(output)
    party_files.edit("bob", output_dir=str(output))

    result = _run(["splitrec.party_server", "--config", str(party_files.bob)], prefix)

    assert result.returncode == 2, result.stderr
    assert f"splitrec-party: {output} ('output_dir' in {party_files.bob})" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_party_server_refuses_a_custom_model_it_cannot_build(party_files):
    code = party_files.folder / "models"
    code.mkdir()
    (code / "net.py").write_text("def build(inputs, width, seed):\n    return None\n")
    model = {"family": "custom", "code": str(code), "base": "net:build"}
    party_files.edit("alice", model={**model, "output_width": 8})

    result = _run(["splitrec.party_server", "--config", str(party_files.alice)])

    assert result.returncode == 2, result.stderr
    assert (
        f"splitrec-party: {party_files.alice}: model.base 'net:build' raised "
        "TypeError: it returned NoneType, not a keras.Model"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_checks_every_party_output_dir_before_starting_anything(party_files):
    output = party_files.folder / "alice-output"
    output.write_text("oops")
    party_files.edit("alice", output_dir=str(output))

    result = _run(demo_args(party_files))

    assert result.returncode == 2, result.stderr
    assert f"{output} ('output_dir' in {party_files.alice}) is not a folder" in (
        result.stderr
    )
    assert "is up at" not in result.stderr  # no party was started


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["splitrec.coordinator", "run", "--epochs", "0"], "--epochs"),
        (
            ["splitrec.coordinator", "demo", "--batch-size", "-3", "--party", "x"],
            "--batch-size",
        ),
        (["splitrec.coordinator", "run", "--epochs", "many"], "--epochs"),
        (["splitrec.party_server", "--peer-timeout", "-1"], "--peer-timeout"),
        (["splitrec.party_server", "--peer-timeout", "nan"], "--peer-timeout"),
        (["splitrec.party_server", "--intra-op-threads", "-2"], "--intra-op-threads"),
    ],
)
def test_a_bad_flag_value_names_the_flag_and_exits_2(party_files, args, flag):
    config = ["--job", str(party_files.job)] if args[0] == "coordinator" else []
    if args[0] == "party_server":
        config = ["--config", str(party_files.bob)]

    result = _run([*args, *config])

    assert result.returncode == 2
    assert f"argument {flag}: " in result.stderr
    assert str(party_files.job) not in result.stderr


@pytest.mark.skipif(not ROOT_USER, reason="a small disk needs a tmpfs mount (root)")
def test_a_full_disk_ends_the_job_at_once(party_files, tmp_path):
    party_files.edit("job", epochs=1, recovery={"max_attempts": 5, "timeout": 60})
    # bob's output_dir holds the alignment cache but not a checkpoint.
    output = party_files.folder / "runs" / "bob"
    parties = start_local_parties(
        party_files, tmp_path / "logs", prefixes={"bob": _mounted(output, "size=1m")}
    )
    try:
        result = _run(["splitrec.coordinator", "run", "--job", str(party_files.job)])
    finally:
        for party in parties.values():
            party.stop()
    assert result.returncode == 1, result.stderr[-3000:]
    assert "RESOURCE_EXHAUSTED" in result.stderr
    assert "No space left on device" in result.stderr
    assert "free space on that disk" in result.stderr
    assert "trying again" not in result.stderr  # no recovery attempt used


def test_a_party_lost_during_the_first_psi_is_waited_for(party_files, tmp_path):
    party_files.edit("job", epochs=1, predict="none", recovery={"timeout": 120})
    logs = tmp_path / "logs"
    parties = start_local_parties(party_files, logs)
    job = start_coordinator(party_files.job)
    try:
        # alice's PSI workers show that the first alignment is running.
        deadline = time.monotonic() + 120
        while not (workers := descendants(parties["alice"].process.pid)):
            assert time.monotonic() < deadline, "PSI never started"
            time.sleep(0.01)
        os.kill(parties["alice"].process.pid, signal.SIGKILL)
        parties["alice"].process.wait()
        parties["alice"] = start_party(party_files.alice, logs / "alice-again.log")
        out, err = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
        for party in parties.values():
            party.stop()
    assert job.returncode == 0, err[-3000:]
    assert "while starting; trying again (attempt 1 of" in err
    assert "job finished: 1 epochs" in out
    # the killed alice's PSI workers left with her
    assert not [pid for pid in workers if alive(pid)]
