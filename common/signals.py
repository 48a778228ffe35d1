"""Stopping on a signal: SIGINT (Ctrl-C), SIGTERM (``timeout``, ``docker stop``,
systemd, CI cancellation) and SIGHUP (a closed terminal) all unwind the main
thread the same way, so every ``finally`` runs and started processes stop.

The exit code is the shell's convention, 128 + the signal's number: 130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP. A second signal while stopping is
noted and ignored, so the clean-up it interrupts cannot leave processes behind.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from splitrec.common.lifetime import stop_with_parent

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """Raised in the main thread by a stop signal (like ``KeyboardInterrupt``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_stopping: list[int] = []


def _handle(signum: int, frame: FrameType | None) -> None:
    if _stopping:
        print(
            f"{signal.Signals(signum).name} received while stopping; finishing the "
            "clean-up first",
            file=sys.stderr,
            flush=True,
        )
        return
    _stopping.append(signum)
    raise Terminated(signum)


def raise_on_stop_signals() -> None:
    """Installs the handlers (main thread only, as Python requires). A process
    started by another that asked to tie it (``lifetime.child_environment``: a
    benchmark running a job) stops as on SIGTERM when that one dies."""
    _stopping.clear()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handle)
    stop_with_parent()


class StopFlag:
    """A stop request that a signal handler may make.

    ``threading.Event.set`` takes a lock that ``Event.wait`` in the main thread
    holds between its sleeps; a handler that runs there and sets the event
    waits for itself forever. This flag takes no lock: a handler or any thread
    sets it, and the main thread sleeps in short steps until it is set.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, every: float = 0.1, until: Callable[[], bool] | None = None) -> None:
        """Returns once the flag is set (or ``until()`` is false, when given)."""
        while not self._set and (until is None or until()):
            time.sleep(every)
