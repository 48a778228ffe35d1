"""Helpers for tests: generated data, configs rewritten for a temp folder, servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.movielens.generate import generate_ml1m
from common.movielens.prepare import prepare_party_csvs

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def generate_party_csvs(folder: Path, num_ratings: int) -> Path:
    """Generated ml-1m files turned into alice's and bob's CSVs, as ``make data`` "
    "does."""
    raw = generate_ml1m(folder / "raw", num_ratings=num_ratings, seed=7)
    prepare_party_csvs(raw.ratings.parent, folder)
    return folder


@dataclass
class PartyFiles:
    folder: Path
    alice: Path
    bob: Path
    job: Path

    def edit(self, which: str, **changes: object) -> Path:
        """Sets top-level keys of one config file (``alice``, ``bob`` or ``job``)."""
        path = getattr(self, which)
        data = yaml.safe_load(path.read_text())
        data.update(changes)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def read(self, which: str) -> dict:
        return yaml.safe_load(getattr(self, which).read_text())


def write_configs(folder: Path, data_dir: Path) -> PartyFiles:
    """The repository's example configs, pointed at ``data_dir`` and a temp runs dir."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("alice", "bob", "job"):
        data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
        if name == "job":
            data["runs_dir"] = str(folder / "runs")
            data["connect_timeout"] = 20
            data["rpc_timeout"] = 60
        else:
            data["data"]["path"] = str(data_dir / f"{name}_ml1m.csv")
            data["output_dir"] = str(folder / "runs" / name)
            data["listen"] = "127.0.0.1:0"
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(data, sort_keys=False))
    return PartyFiles(folder, paths["alice"], paths["bob"], paths["job"])


def set_addresses(files: PartyFiles, alice: str, bob: str) -> None:
    """Points the job at both parties and alice at bob."""
    job = files.read("job")
    job["parties"] = [
        {"name": "alice", "address": alice},
        {"name": "bob", "address": bob},
    ]
    files.edit("job", parties=job["parties"])


def point_alice_at_bob(files: PartyFiles, bob: str) -> None:
    files.edit("alice", peers=[{"name": "bob", "address": bob}])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextmanager
def running_parties(files: PartyFiles, peer_timeout: float = 30.0) -> Iterator[dict]:
    """Starts bob, then alice (pointed at bob), as in-process servers on free ports."""
    from common.config import load_party_config
    from party_server.server import start_party

    started = {}
    try:
        bob = start_party(load_party_config(files.bob), peer_timeout=peer_timeout)
        started["bob"] = bob
        bob_address = f"127.0.0.1:{bob.port}"
        point_alice_at_bob(files, bob_address)
        alice = start_party(load_party_config(files.alice), peer_timeout=peer_timeout)
        started["alice"] = alice
        set_addresses(files, f"127.0.0.1:{alice.port}", bob_address)
        yield started
    finally:
        for party in started.values():
            party.stop(grace=1.0)
