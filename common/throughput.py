"""Throughput that leaves out start-up: graph tracing and the first steps."""

from __future__ import annotations

import time


class SteadyRate:
    """Samples per second between the first and the last mark.

    Mark after every progress report; the first mark comes after the first
    ``report_every`` steps, so tracing and warm-up fall before it.
    """

    def __init__(self) -> None:
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None

    def mark(self, samples_done: int) -> None:
        now = (time.monotonic(), samples_done)
        if self._first is None:
            self._first = now
        self._last = now

    def rate(self) -> float:
        """NaN when fewer than two marks came (an epoch shorter than one report)."""
        if self._first is None or self._last is None:
            return float("nan")
        seconds = self._last[0] - self._first[0]
        samples = self._last[1] - self._first[1]
        return samples / seconds if seconds > 0 and samples > 0 else float("nan")
