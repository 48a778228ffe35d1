"""What training cost on the wire: party-to-party and coordinator bytes.

Counts the training windows that completed, each once: a window that failed and
was run again after a recovery is counted only the time it completed. A feature
party reports the messages of its window's stream (both directions), so every
party-to-party message is counted exactly once; the coordinator counts its own
control messages of the window. The totals travel with each checkpoint in the
manifest, and a restore (after a failure, or when a new coordinator resumes the
job) goes back to the totals of the checkpoint restored: windows after it run
again and are counted then.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from splitrec.common.atomic import write_atomically
from splitrec.common.traffic import Traffic
from splitrec.coordinator.client import PartyClient
from splitrec.v1 import control_pb2
from splitrec.wire import serde


class TrafficLedger:
    def __init__(
        self, clients: dict[str, PartyClient], feature_parties: tuple[str, ...]
    ) -> None:
        self._clients = clients
        self.peer = dict.fromkeys(feature_parties, Traffic())
        self.control = dict.fromkeys(clients, Traffic())

    def state(self) -> dict[str, dict[str, dict[str, int]]]:
        """The totals so far, for the manifest."""
        return {
            "peer": {n: asdict(t) for n, t in self.peer.items()},
            "control": {n: asdict(t) for n, t in self.control.items()},
        }

    def restore(self, state: dict[str, dict[str, dict[str, int]]]) -> None:
        """Goes back to the totals of a checkpoint (zero where it has none)."""
        for totals, kind in ((self.peer, "peer"), (self.control, "control")):
            saved = state.get(kind, {})
            for name in totals:
                totals[name] = Traffic(**saved[name]) if name in saved else Traffic()

    def control_snapshot(self) -> dict[str, Traffic]:
        """The coordinator's control counters now (before a window)."""
        return {name: c.traffic.snapshot() for name, c in self._clients.items()}

    def add_window(
        self,
        before: dict[str, Traffic],
        last: dict[str, control_pb2.StepProgress],
    ) -> None:
        """Adds a completed window: each feature party's last progress carries
        its stream's traffic; the control counters moved since ``before``."""
        for name in self.peer:
            self.peer[name] += serde.traffic_from_proto(last[name].peer_traffic)
        for name, client in self._clients.items():
            self.control[name] += client.traffic.snapshot() - before[name]

    def totals(self) -> tuple[int, int]:
        """Bytes so far, both directions: party-to-party, and the coordinator's
        control messages."""
        peer_bytes = sum(t.total_bytes for t in self.peer.values())
        control_bytes = sum(t.total_bytes for t in self.control.values())
        return peer_bytes, control_bytes

    def summary(self, samples: int, steps: int, payload_per_sample: int) -> dict:
        """Totals, and the ratios the benchmark targets are stated in."""
        peer_bytes, control_bytes = self.totals()
        return {
            "train_samples": samples,
            "train_steps": steps,
            "peer_bytes": peer_bytes,
            "control_bytes": control_bytes,
            "peer_bytes_per_sample": peer_bytes / samples if samples else None,
            "raw_payload_bytes_per_sample": payload_per_sample,
            "peer_overhead_ratio": (
                peer_bytes / (samples * payload_per_sample) if samples else None
            ),
            "control_bytes_per_step": control_bytes / steps if steps else None,
            "control_to_peer_ratio": control_bytes / peer_bytes if peer_bytes else None,
            "peer": {name: asdict(t) for name, t in self.peer.items()},
            "control": {name: asdict(t) for name, t in self.control.items()},
        }


def write_traffic(path: Path, summary: dict) -> None:
    write_atomically(path, json.dumps(summary, indent=2) + "\n")
