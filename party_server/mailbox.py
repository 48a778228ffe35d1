"""The label party's inbox of hidden tensors and its outboxes of gradients.

Feature parties' streams put hidden tensors in; the label party's step loop takes
them by step key. The inbox is bounded per sender, so a sender that runs ahead is
slowed by gRPC flow control instead of filling memory.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence

import numpy as np

from common.errors import JobStateError, PeerError
from common.positions import at

# (phase, epoch, step)
Key = tuple[int, int, int]

END_OF_STREAM = object()


class Mailbox:
    def __init__(self, senders: Sequence[str], capacity: int = 64) -> None:
        self._senders = tuple(senders)
        self._capacity = capacity
        self._items: dict[tuple[str, Key], np.ndarray] = {}
        self._counts = dict.fromkeys(self._senders, 0)
        self._cursor: dict[int, tuple[int, int]] = {}
        self._failure: Exception | None = None
        self._cond = threading.Condition()

    def put(self, sender: str, key: Key, array: np.ndarray, timeout: float) -> None:
        """Stores one hidden tensor; refuses duplicates and steps already taken.

        Waits up to ``timeout`` for room; the checks hold at the moment of storing.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._failure is not None:
                    raise self._failure
                self._check_new(sender, key)
                if self._counts[sender] < self._capacity:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerError(
                        f"the label party did not consume {sender}'s tensors within "
                        f"{timeout:g} s"
                    )
                self._cond.wait(remaining)
            self._items[(sender, key)] = array
            self._counts[sender] += 1
            self._cond.notify_all()

    def _check_new(self, sender: str, key: Key) -> None:
        phase, epoch, step = key
        cursor = self._cursor.get(phase)
        if cursor is not None and (epoch, step) <= cursor:
            raise JobStateError(
                f"{at(epoch, step)} from {sender} was already processed"
            )
        if (sender, key) in self._items:
            raise JobStateError(f"{at(epoch, step)} from {sender} was already received")

    def take(
        self, key: Key, timeout: float, cancelled: threading.Event
    ) -> list[np.ndarray]:
        """The hidden tensors of every sender for one step, in sender order."""
        wanted = [(sender, key) for sender in self._senders]
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(w in self._items for w in wanted):
                if self._failure is not None:
                    raise self._failure
                if cancelled.is_set():
                    raise JobStateError("the pass was cancelled")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = [s for s, k in wanted if (s, k) not in self._items]
                    raise PeerError(
                        f"no hidden tensor from {missing} for {at(key[1], key[2])} "
                        f"within {timeout:g} s; is that party running?"
                    )
                self._cond.wait(min(remaining, 0.5))
            arrays = [self._items.pop(w) for w in wanted]
            for sender in self._senders:
                self._counts[sender] -= 1
            self._cursor[key[0]] = (key[1], key[2])
            self._cond.notify_all()
            return arrays

    def end_pass(self, phase: int) -> None:
        """Drops what is left of a pass and lets the same steps be sent again."""
        with self._cond:
            for item_key in [k for k in self._items if k[1][0] == phase]:
                del self._items[item_key]
                self._counts[item_key[0]] -= 1
            self._cursor.pop(phase, None)
            self._cond.notify_all()

    def fail(self, error: Exception) -> None:
        """Wakes every waiter with ``error`` (the job ended or broke)."""
        with self._cond:
            self._failure = error
            self._cond.notify_all()


class Outbox:
    """Messages for one open peer stream, in order, ended by ``END_OF_STREAM``."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._closed = threading.Event()

    def put(self, item: object) -> None:
        self._queue.put(item)

    def close(self) -> None:
        self._closed.set()
        self._queue.put(END_OF_STREAM)

    def is_closed(self) -> bool:
        return self._closed.is_set()

    def get(self, timeout: float) -> object:
        return self._queue.get(timeout=timeout)
