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
    """Thread-safe totals of ``Message.ByteSize()`` per direction.

    A counter with a ``parent`` adds every message to the parent as well (one
    stream's counter inside the party's).
    """

    def __init__(self, parent: TrafficCounter | None = None) -> None:
        self._lock = threading.Lock()
        self._totals = [0, 0, 0, 0]
        self._parent = parent

    def sent(self, message: Message) -> None:
        self._add(0, message.ByteSize())

    def received(self, message: Message) -> None:
        self._add(1, message.ByteSize())

    def _add(self, direction: int, size: int) -> None:
        with self._lock:
            self._totals[direction] += size
            self._totals[direction + 2] += 1
        if self._parent is not None:
            self._parent._add(direction, size)

    def snapshot(self) -> Traffic:
        with self._lock:
            return Traffic(*self._totals)
