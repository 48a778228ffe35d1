"""A child process that must not outlive the process that started it.

``coordinator demo`` (and the tests) start party servers as children. When the
parent is killed outright (SIGKILL: no clean-up runs), Linux can still tell the
child: the launcher sets ``SPLITREC_PARENT_PID`` and the child asks the kernel
for SIGTERM when its parent goes, then stops as after any SIGTERM. A thread
that watches the parent's pid stops it too, without a signal, should the
kernel's never come or never be handled.

Helper processes a server starts itself (the PSI workers) are tied to it with
``exit_with_parent``: they watch their parent and leave when it is gone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

PARENT_VARIABLE = "SPLITREC_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that should stop when this process dies."""
    return {**env, PARENT_VARIABLE: str(os.getpid())}


def stop_with_parent(stop: Callable[[], None] | None = None) -> None:
    """Asks for SIGTERM when the launching parent dies (Linux only; elsewhere,
    and when no parent asked for it, nothing happens), and calls ``stop`` (by
    default: SIGTERM to this process) from a watcher thread within half a
    second of the parent being gone.

    The request is for this process only: the variable is taken out of its
    environment, so that a process it starts is not tied to its parent."""
    expected = os.environ.pop(PARENT_VARIABLE, None)
    if not expected:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl failed")
    except (OSError, AttributeError) as exc:
        logger.info("cannot tie this process to its parent: %s", exc)
        return
    if str(os.getppid()) != expected:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGTERM)
        return
    parent = int(expected)

    def gone() -> None:
        logger.warning("the process that started this one (pid %d) is gone", parent)
        if stop is None:
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            stop()

    _watch_parent(parent, gone)


def _watch_parent(
    parent_pid: int, gone: Callable[[], None], every: float = 0.5
) -> None:
    """Calls ``gone`` once, within ``every`` seconds of this process's parent
    no longer being ``parent_pid``."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every)
        gone()

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def exit_with_parent(parent_pid: int, every: float = 0.5) -> None:
    """Ends this process (exit code 1) within ``every`` seconds of the process
    ``parent_pid`` going away, however it went (a SIGKILL included).

    Meant for the initializer of a pool's worker processes: the kernel's
    parent-death signal follows the *thread* that started a child, and a pool
    starts its workers from whichever thread submits first, so a watcher
    thread that compares ``os.getppid()`` with the parent is used instead.
    """
    _watch_parent(parent_pid, lambda: os._exit(1), every)
