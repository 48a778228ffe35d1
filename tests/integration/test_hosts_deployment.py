"""The README's three-host deployment, on three loopback addresses.

alice serves on 127.0.0.2 and bob on 127.0.0.3, each from a folder of its own
holding only the example config from ``deploy/hosts``, its data and its
certificates (keys protected by a password, read from a file by the parties and
from an environment variable by the coordinator). Host names resolve through
``SPLITREC_HOSTS``. The coordinator starts first and waits for the parties; the
parties serve two jobs in a row, and alice is restarted between them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitrec.coordinator.local import start_party
from splitrec.security.certs import write_bundle
from tests.support import ROOT

HOSTS = ROOT / "deploy" / "hosts"
PASSWORD = "correct horse battery staple"
ADDRESS = {"alice": "127.0.0.2:50051", "bob": "127.0.0.3:50051"}


def _host_folder(root: Path, name: str, authority: Path, data: Path | None) -> Path:
    folder = root / name
    (folder / "certs").mkdir(parents=True)
    config = "job.yaml" if name == "coordinator" else f"{name}.yaml"
    shutil.copy(HOSTS / config, folder / config)
    shutil.copy(authority / "ca.pem", folder / "certs" / "ca.pem")
    for suffix in ("pem", "key"):
        shutil.copy(
            authority / f"{name}.{suffix}", folder / "certs" / f"{name}.{suffix}"
        )
    if data is not None:
        (folder / "data").mkdir()
        shutil.copy(data / f"{name}_ml1m.csv", folder / "data")
        (folder / "certs" / f"{name}.key.password").write_text(PASSWORD + "\n")
    return folder


def _coordinator(folder: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "splitrec.coordinator", "run", "--job"]
    return subprocess.Popen(
        [*command, str(folder / "job.yaml"), *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_three_hosts_with_mutual_tls(small_data, tmp_path, monkeypatch):
    authority = tmp_path / "ca"
    write_bundle(authority, ["alice", "bob", "coordinator"], password=PASSWORD.encode())
    hosts = tmp_path / "hosts"
    folders = {
        "alice": _host_folder(hosts, "alice", authority, small_data),
        "bob": _host_folder(hosts, "bob", authority, small_data),
        "coordinator": _host_folder(hosts, "coordinator", authority, None),
    }
    monkeypatch.setenv(
        "SPLITREC_HOSTS",
        f"alice.example.org={ADDRESS['alice'].split(':')[0]},"
        f"bob.example.org={ADDRESS['bob'].split(':')[0]}",
    )
    monkeypatch.setenv("SPLITREC_KEY_PASSWORD", PASSWORD)
    parties, first = {}, None
    try:
        # The coordinator comes first and waits for parties that are not up yet.
        first = _coordinator(folders["coordinator"], "--epochs", "2")
        for name in ("bob", "alice"):
            parties[name] = start_party(
                folders[name] / f"{name}.yaml",
                tmp_path / f"{name}.log",
                listen=ADDRESS[name],
            )
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err[-3000:]
        assert "waiting for party" in err and "alice.example.org:50051" in err

        # alice restarts on its own; bob serves a second job without restarting.
        assert parties["alice"].stop() == 0
        parties["alice"] = start_party(
            folders["alice"] / "alice.yaml", tmp_path / "alice.log", ADDRESS["alice"]
        )
        second = _coordinator(folders["coordinator"], "--epochs", "1")
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err[-3000:]
    finally:
        codes = {name: party.stop() for name, party in parties.items()}
        if first is not None and first.poll() is None:
            first.kill()
            first.wait()
    assert codes == {"bob": 0, "alice": 0}
    history = json.loads(
        (folders["coordinator"] / "runs" / "deepfm-ml1m" / "history.json").read_text()
    )
    assert [r["epoch"] for r in history] == [1]
    scores = folders["bob"] / "runs" / "deepfm-ml1m" / "predictions-validation.csv"
    assert scores.read_text().startswith("ID,score\n")
    # Nothing of one party's lands in another's folder.
    assert not list(folders["alice"].rglob("*bob*"))
    assert not list(folders["bob"].rglob("*alice*"))
    assert not list(folders["coordinator"].rglob("*.csv"))
    assert os.environ["SPLITREC_KEY_PASSWORD"] not in (tmp_path / "bob.log").read_text()
