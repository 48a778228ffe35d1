"""Runs one window of training steps at every party at once.

Every party streams progress back; the label party's progress carries the running
loss. A party that fails or goes silent for too long stops the window everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from splitrec.common.errors import JobFailedError
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.failures import is_fatal
from splitrec.v1 import control_pb2

_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Window:
    job_id: str
    epoch: int
    first_step: int
    num_steps: int
    report_every: int


class _Consumer(threading.Thread):
    def __init__(
        self,
        client: PartyClient,
        call: grpc.Call,
        on_progress: Callable[[control_pb2.StepProgress], None] | None,
    ) -> None:
        super().__init__(name=f"window-{client.name}", daemon=True)
        self.client = client
        self.call = call
        self.on_progress = on_progress
        self.last_seen = time.monotonic()
        self.last: control_pb2.StepProgress | None = None
        self.error: Exception | None = None
        self.cancelled_by_us = False

    def run(self) -> None:
        try:
            for progress in self.call:
                self.client.traffic.received(progress)
                self.last_seen = time.monotonic()
                self.last = progress
                if self.on_progress is not None:
                    self.on_progress(progress)
        except grpc.RpcError as exc:
            if not self.cancelled_by_us:
                self.error = self.client.rpc_error("RunSteps", exc)

    def cancel(self) -> None:
        self.cancelled_by_us = True
        self.call.cancel()


def run_window(
    clients: dict[str, PartyClient],
    label_party: str,
    window: Window,
    on_progress: Callable[[control_pb2.StepProgress], None],
    stall_seconds: float,
) -> dict[str, control_pb2.StepProgress]:
    """Runs the window everywhere; returns each party's last progress."""
    consumers = {
        name: _Consumer(
            client,
            client.run_steps(
                window.job_id,
                window.epoch,
                window.first_step,
                window.num_steps,
                window.report_every,
            ),
            on_progress if name == label_party else None,
        )
        for name, client in clients.items()
    }
    for consumer in consumers.values():
        consumer.start()
    _watch(consumers, window, stall_seconds)
    expected = window.first_step + window.num_steps
    for name, consumer in consumers.items():
        last = consumer.last
        if last is None or last.next_step != expected:
            raise JobFailedError(
                f"party {name} ended window {window.first_step}..{expected - 1} "
                f"of epoch {window.epoch + 1} early (at step "
                f"{last.next_step if last else window.first_step})"
            )
    return {name: consumer.last for name, consumer in consumers.items()}


def _watch(
    consumers: dict[str, _Consumer], window: Window, stall_seconds: float
) -> None:
    while any(c.is_alive() for c in consumers.values()):
        time.sleep(_POLL_SECONDS)
        failed = [c for c in consumers.values() if c.error is not None]
        now = time.monotonic()
        stalled = [
            c
            for c in consumers.values()
            if c.is_alive() and now - c.last_seen > stall_seconds
        ]
        if failed or stalled:
            for consumer in consumers.values():
                consumer.cancel()
            for consumer in consumers.values():
                consumer.join(5.0)
            reasons = [str(c.error) for c in consumers.values() if c.error is not None]
            reasons += [
                f"party {c.client.name} reported no progress for {stall_seconds:.0f} s"
                for c in stalled
            ]
            errors = [c.error for c in consumers.values() if c.error is not None]
            raise JobFailedError(
                f"epoch {window.epoch + 1}, steps {window.first_step}.."
                f"{window.first_step + window.num_steps - 1} failed: "
                + "; ".join(reasons),
                fatal=any(is_fatal(e) for e in errors),
            )
