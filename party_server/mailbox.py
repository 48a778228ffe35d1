"""The label party's inbox of hidden tensors and its outboxes of gradients.

Feature parties' streams put hidden tensors in; the label party's step loop takes
them by step key. The inbox is bounded per sender, so a sender that runs ahead is
slowed by gRPC flow control instead of filling memory.

A sender has one current stream per phase: the one whose hidden tensor was last
stored. A stream that stores its first tensor replaces the sender's earlier one
of that phase (a party that restarted opens a new one), whose tensors not yet
taken are dropped and whose answers end. A stream that opens and then sends
nothing usable replaces nothing, and what a stream stored is dropped when it
fails (``drop``), so a broken or hostile stream leaves no tensor behind for a
step to take.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence

import numpy as np

from splitrec.common.errors import InvalidMessageError, JobStateError, PeerError
from splitrec.common.positions import at

# (phase, epoch, step)
Key = tuple[int, int, int]

END_OF_STREAM = object()


class Inbound:
    """One open peer stream: its sender and phase, the outbox of its answers and
    the last step it stored (each next one must follow it)."""

    def __init__(self, sender: str, phase: int) -> None:
        self.sender = sender
        self.phase = phase
        self.outbox = Outbox()
        self.last: tuple[int, int] | None = None
        # Replaced by a newer stream of the sender, or failed: stores no more.
        self.retired = False

    def check_next(self, epoch: int, step: int) -> None:
        """Refuses a step other than the one after the stream's last."""
        if self.last is None:
            return
        expected = (self.last[0], self.last[1] + 1)
        if (epoch, step) != expected:
            raise InvalidMessageError(
                f"{self.sender} sent {at(epoch, step)} after {at(*self.last)}; a "
                "stream sends a pass's steps in order, each once (expected "
                f"{at(*expected)})"
            )


class Mailbox:
    def __init__(self, senders: Sequence[str], capacity: int = 64) -> None:
        self._senders = tuple(senders)
        self._capacity = capacity
        # (sender, key) -> (tensor, its stream, when it was stored).
        self._items: dict[tuple[str, Key], tuple[np.ndarray, Inbound, float]] = {}
        # When the tensors the last ``take`` returned were stored, by sender.
        self.arrived: dict[str, float] = {}
        self._counts = dict.fromkeys(self._senders, 0)
        self._cursor: dict[int, tuple[int, int]] = {}
        self._current: dict[tuple[str, int], Inbound] = {}
        self._failure: Exception | None = None
        self._cond = threading.Condition()

    def put(self, stream: Inbound, key: Key, array: np.ndarray, timeout: float) -> None:
        """Stores one hidden tensor of ``stream``; refuses duplicates and steps
        already taken. The stream becomes its sender's current one of its phase.

        Waits up to ``timeout`` for room; the checks hold at the moment of storing.
        """
        sender = stream.sender
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._failure is not None:
                    raise self._failure
                previous = self._current.get((sender, stream.phase))
                self._check_new(stream, key, previous)
                if previous is not stream:
                    self._replace(previous, stream)
                if self._counts[sender] < self._capacity:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PeerError(
                        f"the label party did not consume {sender}'s tensors within "
                        f"{timeout:g} s"
                    )
                self._cond.wait(remaining)
            self._items[(sender, key)] = (array, stream, time.monotonic())
            self._counts[sender] += 1
            self._cond.notify_all()

    def _check_new(self, stream: Inbound, key: Key, previous: Inbound | None) -> None:
        """Refuses a step already taken or stored; a tensor ``previous`` stored
        does not count when ``stream`` is about to replace it."""
        phase, epoch, step = key
        sender = stream.sender
        if stream.retired:
            raise JobStateError(
                f"this stream of {sender} was replaced by a newer one or failed; "
                "open a new stream"
            )
        cursor = self._cursor.get(phase)
        if cursor is not None and (epoch, step) <= cursor:
            raise JobStateError(
                f"{at(epoch, step)} from {sender} was already processed"
            )
        stored = self._items.get((sender, key))
        if stored is not None and (stored[1] is stream or stored[1] is not previous):
            raise JobStateError(f"{at(epoch, step)} from {sender} was already received")

    def _replace(self, previous: Inbound | None, stream: Inbound) -> None:
        self._current[(stream.sender, stream.phase)] = stream
        if previous is not None:
            self._discard(previous)
            previous.outbox.close()

    def _discard(self, stream: Inbound) -> list[Key]:
        """Retires ``stream``: its tensors not yet taken go (their keys are
        returned)."""
        stream.retired = True
        dropped = [k for k, v in self._items.items() if v[1] is stream]
        for item_key in dropped:
            del self._items[item_key]
            self._counts[stream.sender] -= 1
        self._cond.notify_all()
        return sorted(key for _, key in dropped)

    def drop(self, stream: Inbound) -> list[Key]:
        """Drops what ``stream`` stored and no step took yet (it failed, was
        cancelled, or ended a training pass with tensors left over); returns
        the keys dropped, in order."""
        with self._cond:
            return self._discard(stream)

    def answering(self, sender: str, phase: int) -> Outbox | None:
        """The outbox of the sender's current stream of ``phase``, while open."""
        with self._cond:
            stream = self._current.get((sender, phase))
            if stream is None or stream.retired:
                return None
            return stream.outbox

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
            taken = [self._items.pop(w) for w in wanted]
            arrays = [item[0] for item in taken]
            self.arrived = {
                sender: item[2]
                for sender, item in zip(self._senders, taken, strict=True)
            }
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
        """Wakes every waiter with ``error`` (the job ended or broke) and ends
        every stream's answers."""
        with self._cond:
            self._failure = error
            for stream in self._current.values():
                stream.outbox.close()
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
