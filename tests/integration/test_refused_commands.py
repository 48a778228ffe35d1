"""A command that is refused leaves no folder and no lock file behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from splitrec.coordinator.ownership import LOCK_FILE
from tests.support import ROOT, run_module

pytestmark = pytest.mark.slow


def _job(folder: Path, **changes: object) -> Path:
    """A job whose parties nobody runs, its runs_dir not yet made."""
    config = {
        "job": "never-run",
        "parties": [
            {"name": "alice", "address": "127.0.0.1:9"},
            {"name": "bob", "address": "127.0.0.1:9"},
        ],
        "label_party": "bob",
        "runs_dir": str(folder / "runs" / "here"),
        "connect_timeout": 2,
        "tls": {"insecure": True},
        **changes,
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("command", "code", "needle"),
    [
        (
            ["predict", "--model", "epoch-9", "--dataset", "new"],
            2,
            "no model version 'epoch-9' of job 'never-run' is recorded",
        ),
        (["export"], 1, "no finished epoch of job never-run is recorded here"),
        (["run", "--epochs", "0"], 2, "argument --epochs: 0 is outside"),
        (["run"], 1, "at 127.0.0.1:9: Describe failed: "),
    ],
)
def test_a_refused_command_makes_no_folder(tmp_path, command, code, needle):
    job = _job(tmp_path)

    result = run_module(
        ["splitrec.coordinator", *command, "--job", str(job)], timeout=300
    )

    assert result.returncode == code, result.stderr[-3000:]
    assert needle in result.stderr
    assert _files(tmp_path) == ["job.yaml"]


def test_a_bad_config_makes_no_folder(tmp_path):
    job = _job(tmp_path, epoch=3)

    result = run_module(["splitrec.coordinator", "run", "--job", str(job)], timeout=300)

    assert result.returncode == 2
    assert "key 'epoch': unknown key; did you mean 'epochs'?" in result.stderr
    assert _files(tmp_path) == ["job.yaml"]


def test_a_job_another_coordinator_holds_is_refused_leaving_its_lock(tmp_path):
    job = _job(tmp_path)
    run_dir = tmp_path / "runs" / "here" / "never-run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "proto")!r}]
                from splitrec.coordinator.ownership import RunLock
                with RunLock({str(run_dir)!r}):
                    print("locked", flush=True)
                    time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        held = _files(tmp_path)

        result = run_module(
            ["splitrec.coordinator", "run", "--job", str(job)], timeout=300
        )

        assert result.returncode == 1, result.stderr[-3000:]
        assert f"is in use by coordinator pid {holder.pid}" in result.stderr
        assert _files(tmp_path) == held
    finally:
        holder.kill()
        holder.wait()
    assert f"runs/here/never-run/{LOCK_FILE}" in held


def test_a_party_server_that_cannot_start_makes_no_output_folder(tmp_path):
    config = {
        "party": "alice",
        "output_dir": str(tmp_path / "out" / "alice"),
        "data": {"path": str(tmp_path / "missing.csv"), "columns": ["ID", "Age"]},
        "features": [{"name": "Age", "type": "hashed", "bins": 10}],
        "model": {"embedding_dim": 4, "deep_units": [4]},
        "peers": [{"name": "bob", "address": "127.0.0.1:9"}],
        "tls": {"insecure": True},
    }
    path = tmp_path / "alice.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    result = run_module(["splitrec.party_server", "--config", str(path)], timeout=300)

    assert result.returncode == 2, result.stderr[-3000:]
    assert "missing.csv" in result.stderr
    assert _files(tmp_path) == ["alice.yaml"]
