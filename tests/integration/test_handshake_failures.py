"""A job whose parties do not fit together fails at the handshake, clearly and at
once (no retry)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, refused_address, running_parties


def _run_job(job_path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The job's coordinator; ``timeout`` only catches a hang."""
    return subprocess.run(
        [sys.executable, "-m", "splitrec.coordinator", "run", "--job", str(job_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _addresses(files) -> dict[str, str]:
    return {p["name"]: p["address"] for p in files.read("job")["parties"]}


def test_wrong_party_name_is_refused(party_files):
    with running_parties(party_files):
        address = _addresses(party_files)
        swapped = [
            {"name": "alice", "address": address["bob"]},
            {"name": "bob", "address": address["alice"]},
        ]
        party_files.edit("job", parties=swapped)
        result = _run_job(party_files.job)
    assert result.returncode == 1
    assert "is party 'bob', but" in result.stderr
    assert "lists it as 'alice'" in result.stderr


def test_wrong_label_party_is_refused(party_files):
    with running_parties(party_files):
        party_files.edit("job", label_party="alice")
        result = _run_job(party_files.job)
    assert result.returncode == 1
    assert "names 'alice' as label party" in result.stderr
    assert "configured as a" in result.stderr


def test_output_shape_mismatch_is_refused(party_files):
    bob = party_files.read("bob")
    bob["model"]["embedding_dim"] = 4
    party_files.edit("bob", model=bob["model"])
    with running_parties(party_files):
        result = _run_job(party_files.job)
    assert result.returncode == 1
    assert "output shapes differ" in result.stderr
    assert "'alice': 8" in result.stderr and "'bob': 4" in result.stderr


def test_families_that_do_not_combine_are_refused(party_files):
    bob = party_files.read("bob")
    party_files.edit("bob", model={**bob["model"], "family": "wide_deep"})
    with running_parties(party_files):
        result = _run_job(party_files.job)
    assert result.returncode == 1
    assert (
        "party alice's base is of model family 'deepfm', which a wide_deep fuse "
        "cannot take (it takes ['wide_deep']); set model.family in alice's config"
    ) in result.stderr


def test_unreachable_party_fails_after_the_connect_timeout_without_retry(party_files):
    with running_parties(party_files), refused_address() as nobody:
        address = _addresses(party_files)
        party_files.edit(
            "job",
            connect_timeout=2,
            parties=[
                {"name": "alice", "address": address["alice"]},
                {"name": "bob", "address": nobody},
            ],
        )
        result = _run_job(party_files.job)
    assert result.returncode == 1
    assert f"party bob at {nobody}: Describe failed" in result.stderr
    assert "is the party server running" in result.stderr
    assert "trying again" not in result.stderr


def test_parties_with_different_rows_train_on_the_common_rows(party_files, tmp_path):
    bob_csv = party_files.read("bob")["data"]["path"]
    lines = Path(bob_csv).read_text(encoding="utf-8").splitlines()
    shorter = tmp_path / "bob_fewer_rows.csv"
    shorter.write_text("\n".join(lines[:-5]) + "\n", encoding="utf-8")
    bob = party_files.read("bob")
    bob["data"]["path"] = str(shorter)
    party_files.edit("bob", data=bob["data"])
    with running_parties(party_files):
        result = _run_job(party_files.job)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rows aligned privately: 19995 in the intersection" in result.stderr


def test_bad_job_config_names_file_and_key(party_files):
    party_files.edit("job", epochs="five")
    result = _run_job(party_files.job)
    assert result.returncode == 2  # nothing started
    assert str(party_files.job) in result.stderr
    assert "key 'epochs'" in result.stderr
