"""What training cost on the wire: party-to-party and coordinator bytes.

Counts only the training windows (not evaluation or prediction): each epoch's
windows are bracketed by ``begin`` and ``end``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from common.atomic import write_atomically
from common.traffic import Traffic
from coordinator.client import PartyClient


class TrafficLedger:
    def __init__(self, clients: dict[str, PartyClient]) -> None:
        self._clients = clients
        self.peer = dict.fromkeys(clients, Traffic())
        self.control = dict.fromkeys(clients, Traffic())
        self._start: dict[str, tuple[Traffic, Traffic]] = {}

    def begin(self) -> None:
        self._start = {
            name: (client.peer_traffic(), client.traffic.snapshot())
            for name, client in self._clients.items()
        }

    def end(self) -> None:
        for name, client in self._clients.items():
            peer_before, control_before = self._start[name]
            self.peer[name] += client.peer_traffic() - peer_before
            self.control[name] += client.traffic.snapshot() - control_before

    def summary(self, samples: int, steps: int, payload_per_sample: int) -> dict:
        """Totals, and the ratios the benchmark targets are stated in.

        Every party-to-party message has a sender and a receiver, so the
        party-to-party volume is half the sum of what each party counted.
        """
        peer_bytes = sum(t.total_bytes for t in self.peer.values()) // 2
        control_bytes = sum(t.total_bytes for t in self.control.values())
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
