"""A child process that must not outlive the process that started it.

``coordinator demo`` (and the tests) start party servers as children. When the
parent is killed outright (SIGKILL: no clean-up runs), Linux can still tell the
child: the launcher sets ``SPLITREC_PARENT_PID`` and the child asks the kernel
for SIGTERM when its parent goes, then stops as after any SIGTERM.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal

logger = logging.getLogger(__name__)

PARENT_VARIABLE = "SPLITREC_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that should stop when this process dies."""
    return {**env, PARENT_VARIABLE: str(os.getpid())}


def stop_with_parent() -> None:
    """Asks for SIGTERM when the launching parent dies (Linux only; elsewhere,
    and when no parent asked for it, nothing happens)."""
    expected = os.environ.get(PARENT_VARIABLE)
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
