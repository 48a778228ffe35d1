"""A pass's inputs, made on a background thread while earlier steps compute.

A step's inputs (its rows taken from the party's encoded features) are ready
when the step starts: preparing them overlaps the compiled call of the step
before, which releases the interpreter while it runs (see
``splitrec.party_server.job_base.Pass.prepared``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from splitrec.common.errors import JobStateError
from splitrec.models.features import PackedBatch

# Steps whose inputs a pass prepares before they are asked for.
PREPARED_AHEAD = 2


@dataclass(frozen=True)
class ReadyBatch:
    """One step's rows and inputs, prepared before the step asked for them."""

    step: int
    rows: np.ndarray
    inputs: PackedBatch


class PreparedBatches:
    """A pass's steps' inputs (``take`` of each step's rows, ``rows_of``),
    prepared in step order on a background thread while the steps before them
    compute, at most ``ahead`` steps ahead.

    ``get`` hands them out in the same order, one step after the other; the
    thread stops once the last step is prepared, when ``take`` fails (``get``
    then raises its error) or when the batches are closed. Use it in a
    ``with`` block: leaving the block closes it and waits for the thread.
    """

    def __init__(
        self,
        rows_of: Callable[[int], np.ndarray],
        take: Callable[[np.ndarray], PackedBatch],
        first: int,
        end: int,
        ahead: int = PREPARED_AHEAD,
    ) -> None:
        if ahead < 1:
            raise ValueError(f"prepared batches need ahead >= 1, got {ahead}")
        self._rows_of, self._take = rows_of, take
        self._next, self._end, self._ahead = first, end, ahead
        self._ready: deque[ReadyBatch] = deque()
        self._failure: BaseException | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._prepare, args=(first,), name="prepare-batches", daemon=True
        )
        self._thread.start()

    def _prepare(self, first: int) -> None:
        for step in range(first, self._end):
            with self._changed:
                while len(self._ready) >= self._ahead and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
            try:
                rows = self._rows_of(step)
                ready = ReadyBatch(step, rows, self._take(rows))
            except BaseException as exc:  # handed to the step that asks
                with self._changed:
                    self._failure = exc
                    self._changed.notify_all()
                return
            with self._changed:
                if self._closed:
                    return
                self._ready.append(ready)
                self._changed.notify_all()

    def get(self, step: int) -> ReadyBatch:
        """Step ``step``'s rows and inputs; steps are asked for in order."""
        if step != self._next or step >= self._end:
            raise JobStateError(
                f"inputs of step {step} asked for; the pass prepares step "
                f"{self._next} next (steps up to {self._end - 1}, in order)"
            )
        with self._changed:
            while not self._ready and self._failure is None and not self._closed:
                self._changed.wait()
            if self._closed:
                raise JobStateError("the pass's prepared inputs were closed")
            if not self._ready:
                raise JobStateError(
                    f"preparing the inputs of step {step} failed: {self._failure}"
                ) from self._failure
            ready = self._ready.popleft()
            self._changed.notify_all()
        self._next += 1
        return ready

    def close(self) -> None:
        """Stops preparing and waits for the thread (at most one ``take``)."""
        with self._changed:
            self._closed = True
            self._ready.clear()
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> PreparedBatches:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
