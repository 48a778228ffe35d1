"""What crosses the wire: party-to-party bytes near the raw float32 payload,
coordinator bytes a small fraction of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from splitrec.config.job import load_job_config
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.handshake import handshake
from splitrec.coordinator.windows import Window, run_window
from splitrec.wire import serde
from tests.divergence import assert_same, run_state
from tests.support import ROOT, running_parties

STEPS, BATCH, WIDTH = 30, 64, 32 + 8 + 2


def _peer_traffic(client: PartyClient):
    return serde.traffic_from_proto(client.status().peer_traffic)


def test_peer_bytes_match_payload_and_both_sides_agree(party_files):
    party_files.edit("job", batch_size=BATCH)
    with running_parties(party_files) as parties:
        config = load_job_config(party_files.job)
        clients = {p.name: PartyClient(p.name, p.address, 30.0) for p in config.parties}
        handshake(config, clients)
        before = {name: c.traffic.snapshot() for name, c in clients.items()}
        # The private ID alignment during the handshake is not training traffic.
        aligned = {name: _peer_traffic(c) for name, c in clients.items()}
        party_aligned = parties["alice"].party.traffic.snapshot()
        window = Window(config.job, 0, 0, STEPS, 10)
        last = run_window(clients, "bob", window, lambda _: None, 30.0)
        control = sum(
            c.traffic.snapshot().total_bytes - before[n].total_bytes
            for n, c in clients.items()
        )
        alice = _peer_traffic(clients["alice"]) - aligned["alice"]
        bob = _peer_traffic(clients["bob"]) - aligned["bob"]
        for client in clients.values():
            client.close()

    # Every byte alice sent bob counted as received, and the reverse.
    assert alice.bytes_sent == bob.bytes_received
    assert alice.bytes_received == bob.bytes_sent
    assert alice.messages_sent == STEPS + 1  # Hello, then one hidden tensor a step
    assert alice.messages_received == STEPS  # one gradient a step
    raw = STEPS * BATCH * WIDTH * 4 * 2  # float32 forward and backward
    assert raw < alice.bytes_sent + alice.bytes_received <= 1.1 * raw
    assert parties["alice"].party.traffic.snapshot() - party_aligned == alice
    # The window's own count, reported with its last progress, is exactly that.
    assert serde.traffic_from_proto(last["alice"].peer_traffic) == alice
    # The coordinator's window: one request, a few progress messages.
    assert control < 0.01 * raw


@pytest.mark.slow
def test_jobs_side_by_side_each_count_their_own_traffic(party_files):
    """Two jobs of equal settings (and names of equal length: the name travels
    in every message) on the same parties at once: each records only its own
    messages, so both records agree, and neither disturbs the other's training:
    their checkpoints, metrics and traffic agree bit for bit."""
    party_files.edit("job", epochs=1, predict="none")
    names = ("side-a", "side-b")
    paths = [party_files.folder / f"{name}.yaml" for name in names]
    with running_parties(party_files):  # the job's config names their addresses
        for name, path in zip(names, paths, strict=True):
            path.write_text(
                party_files.job.read_text().replace("job: deepfm-ml1m", f"job: {name}")
            )
        jobs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "splitrec.coordinator",
                    "run",
                    "--job",
                    str(path),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path in paths
        ]
        outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, err) in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, err[-3000:]

    ours, theirs = (
        run_state(party_files.folder, n, ("alice", "bob"), named=True) for n in names
    )
    raw = ours.traffic["raw_payload_bytes_per_sample"]
    assert raw < ours.traffic["peer_bytes_per_sample"] <= 1.1 * raw
    assert ours.checkpoints  # the end of the epoch at least
    assert_same(ours, theirs, party_files.read("job")["batch_size"], explain=None)
