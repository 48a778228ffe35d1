"""The traffic ledger's running totals: party-to-party and coordinator bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

from splitrec.common.traffic import Traffic
from splitrec.coordinator.traffic_report import TrafficLedger
from splitrec.v1 import control_pb2


@dataclass
class _Counter:
    now: Traffic = field(default_factory=Traffic)

    def snapshot(self) -> Traffic:
        return self.now


@dataclass
class _Client:
    traffic: _Counter = field(default_factory=_Counter)


def _progress(sent: int, received: int) -> control_pb2.StepProgress:
    return control_pb2.StepProgress(
        peer_traffic=control_pb2.Traffic(bytes_sent=sent, bytes_received=received)
    )


def _window(
    ledger: TrafficLedger, clients: dict[str, _Client], control: dict[str, int]
) -> None:
    """One completed window: each feature party's stream moved 100 + 10 bytes,
    and each client's control counter ``control[name]`` more bytes sent."""
    before = ledger.control_snapshot()
    for name, size in control.items():
        clients[name].traffic.now += Traffic(bytes_sent=size, bytes_received=1)
    ledger.add_window(before, {"alice": _progress(100, 10), "carol": _progress(5, 5)})


def test_totals_count_every_completed_window_in_both_directions():
    clients = {name: _Client() for name in ("alice", "bob", "carol")}
    ledger = TrafficLedger(clients, ("alice", "carol"))
    assert ledger.totals() == (0, 0)
    _window(ledger, clients, {"alice": 7, "bob": 20, "carol": 3})
    assert ledger.totals() == (110 + 10, 8 + 21 + 4)
    _window(ledger, clients, {"alice": 7, "bob": 20, "carol": 3})
    assert ledger.totals() == (2 * 120, 2 * 33)
    summary = ledger.summary(samples=10, steps=2, payload_per_sample=4)
    assert (summary["peer_bytes"], summary["control_bytes"]) == ledger.totals()


def test_totals_go_back_with_a_restored_checkpoint():
    clients = {name: _Client() for name in ("alice", "bob", "carol")}
    ledger = TrafficLedger(clients, ("alice", "carol"))
    _window(ledger, clients, {"bob": 20})
    saved = ledger.state()
    _window(ledger, clients, {"bob": 20})
    ledger.restore(saved)
    assert ledger.totals() == (120, 21)
    ledger.restore({})
    assert ledger.totals() == (0, 0)
