"""A job's identity covers what each party trains on: a party restarted with
another label rule, other feature or model settings, or a data file with the
same IDs but other values is refused when the job resumes, before any step
runs, with a message naming the party and what kind of thing changed."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from splitrec.coordinator.local import start_local_parties
from splitrec.coordinator.local_configs import LocalConfigs
from tests.support import (
    party_status,
    run_module,
    start_coordinator,
    write_configs,
)

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"


def _step(address: str) -> tuple[str, int]:
    status = party_status(address)
    return (status.state, status.step) if status else ("", 0)


@pytest.fixture(scope="module")
def unfinished(small_data, tmp_path_factory) -> Path:
    """A folder whose job stopped mid-epoch: its coordinator was killed."""
    folder = tmp_path_factory.mktemp("unfinished")
    files = write_configs(folder, small_data)
    files.edit("job", epochs=2, predict="none", checkpoint={"every_steps": 20})
    parties = start_local_parties(files, folder / "logs")
    try:
        job = start_coordinator(files.job)
        deadline = time.monotonic() + 120
        while _step(parties["bob"].address) < ("training", 30):
            assert time.monotonic() < deadline, "training never reached step 30"
            time.sleep(0.05)
        job.kill()
        job.wait()
    finally:
        for party in parties.values():
            party.stop()
    return folder


def _copy(unfinished: Path, folder: Path, data: Path) -> LocalConfigs:
    """The unfinished run's state in a new folder, with configs pointing there."""
    shutil.copytree(unfinished / "runs", folder / "runs")
    files = write_configs(folder, data)
    original = yaml.safe_load((unfinished / "job.yaml").read_text())
    files.edit("job", **{k: original[k] for k in ("epochs", "predict", "checkpoint")})
    return files


def _change_data(data: Path) -> None:
    """The same IDs in the same order; one movie's genres differ."""
    path = data / "bob_ml1m.csv"
    header, first, *rest = path.read_text().splitlines()
    fields = first.split(",")
    fields[4] = "Documentary" if fields[4] != "Documentary" else "Western"
    path.write_text("\n".join([header, ",".join(fields), *rest]) + "\n")


CHANGES = {
    "label rule": (
        "bob",
        lambda f, d: f.edit("bob", label={"column": "Rating", "positive_above": 4}),
    ),
    "data file": ("bob", lambda f, d: _change_data(d)),
    "feature settings": (
        "alice",
        lambda f, d: f.edit(
            "alice",
            features=[*f.read("alice")["features"][:-1]],
        ),
    ),
    "model settings": (
        "alice",
        lambda f, d: f.edit(
            "alice", model={"embedding_dim": 8, "deep_units": [128, 32]}
        ),
    ),
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_party_changed_since_the_job_started_is_refused(
    unfinished, small_data, tmp_path, kind
):
    party, change = CHANGES[kind]
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    files = _copy(unfinished, tmp_path / "job", data)
    change(files, data)
    parties = start_local_parties(files, tmp_path / "logs")
    try:
        result = run_module(
            ["splitrec.coordinator", "run", "--job", str(files.job)], timeout=300
        )
    finally:
        for running in parties.values():
            running.stop()
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"{party}'s {kind} changed since the job started" in result.stderr
    assert "run with --fresh to start the job afresh" in result.stderr
    # Refused before any step: nothing was restored or trained, no retry made.
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert "restored checkpoint" not in logs
    assert "epoch 1/2" not in result.stderr
    assert "trying again" not in result.stderr


def test_unchanged_parties_resume_and_finish(unfinished, small_data, tmp_path):
    files = _copy(unfinished, tmp_path / "job", small_data)
    parties = start_local_parties(files, tmp_path / "logs")
    try:
        job = start_coordinator(files.job)
        _, err = job.communicate(timeout=300)
    finally:
        for running in parties.values():
            running.stop()
    assert job.returncode == 0, err[-3000:]
    assert "resuming job deepfm-ml1m from checkpoint" in err
