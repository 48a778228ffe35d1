"""Helpers for tests: generated data, configs rewritten for a temp folder, servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.movielens.prepare import prepare_generated
from coordinator.local_configs import LocalConfigs

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def generate_party_csvs(folder: Path, num_ratings: int) -> Path:
    """Generated ml-1m files turned into alice's and bob's CSVs, as ``make data``."""
    prepare_generated(folder, num_ratings, seed=7)
    return folder


# The tests' name for a folder of configs; timeouts short enough for tests.
PartyFiles = LocalConfigs


def write_configs(folder: Path, data_dir: Path) -> PartyFiles:
    """The repository's example configs, pointed at ``data_dir`` and a temp runs dir."""
    return LocalConfigs.write(folder, data_dir, connect_timeout=20, rpc_timeout=60)


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
        files.point_alice_at(bob_address)
        alice = start_party(load_party_config(files.alice), peer_timeout=peer_timeout)
        started["alice"] = alice
        files.set_job_addresses(f"127.0.0.1:{alice.port}", bob_address)
        yield started
    finally:
        for party in started.values():
            party.stop(grace=1.0)
