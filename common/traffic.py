"""Counts the serialized size of the messages a process sends and receives."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from google.protobuf.message import Message


@dataclass(frozen=True)
class Traffic:
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.bytes_sent + other.bytes_sent,
            self.bytes_received + other.bytes_received,
            self.messages_sent + other.messages_sent,
            self.messages_received + other.messages_received,
        )

    def __sub__(self, other: Traffic) -> Traffic:
        """What was counted between two snapshots."""
        return Traffic(
            self.bytes_sent - other.bytes_sent,
            self.bytes_received - other.bytes_received,
            self.messages_sent - other.messages_sent,
            self.messages_received - other.messages_received,
        )

    @property
    def total_bytes(self) -> int:
        return self.bytes_sent + self.bytes_received


class TrafficCounter:
    """Thread-safe totals of ``Message.ByteSize()`` per direction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = [0, 0, 0, 0]

    def sent(self, message: Message) -> None:
        size = message.ByteSize()
        with self._lock:
            self._totals[0] += size
            self._totals[2] += 1

    def received(self, message: Message) -> None:
        size = message.ByteSize()
        with self._lock:
            self._totals[1] += size
            self._totals[3] += 1

    def snapshot(self) -> Traffic:
        with self._lock:
            return Traffic(*self._totals)
