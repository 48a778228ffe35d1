"""The label party's cache of feature parties' outputs for online scoring.

A feature party's output for an entity depends only on the entity's row in its
table and the model version, so the label party may keep it: entries are keyed
by party, model version and key, expire after a set time (a changed table is
noticed at the latest then), and the least recently used go first when the
cache is full. A party's entries are dropped as soon as one of its answers
shows a new table.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np


class OutputCache:
    def __init__(
        self,
        entries: int,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = entries
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str, str], tuple[float, np.ndarray]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._items)

    def get(
        self, party: str, version: str, keys: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """The fresh outputs held for ``keys`` (absent keys are left out)."""
        if not self.capacity:
            return {}
        found = {}
        oldest = self._clock() - self.seconds
        with self._lock:
            for key in keys:
                item = self._items.get((party, version, key))
                if item is None:
                    continue
                if item[0] < oldest:
                    del self._items[(party, version, key)]
                    continue
                self._items.move_to_end((party, version, key))
                found[key] = item[1]
        return found

    def put(
        self, party: str, version: str, keys: Sequence[str], outputs: np.ndarray
    ) -> None:
        if not self.capacity:
            return
        now = self._clock()
        with self._lock:
            for key, row in zip(keys, outputs, strict=True):
                self._items[(party, version, key)] = (now, row)
                self._items.move_to_end((party, version, key))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def drop(self, party: str | None = None) -> None:
        """Forgets ``party``'s entries (every entry when ``None``)."""
        with self._lock:
            if party is None:
                self._items.clear()
                return
            for item in [k for k in self._items if k[0] == party]:
                del self._items[item]
