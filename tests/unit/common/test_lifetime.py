"""A party server stops when the process that launched it dies, however it died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from splitrec.common.lifetime import _watch_parent, child_environment
from tests.support import alive

# A launcher that starts a child tied to it, prints the child's pid, then waits
# to be killed. The child runs its setup, ties itself with the given stop as
# the watcher's action (unless that is empty), and sleeps.
_LAUNCHER = """
import os, subprocess, sys, time
from splitrec.common.lifetime import child_environment
child_code = (
    "import os, signal, time\\n"
    "from splitrec.common.lifetime import stop_with_parent\\n"
    + sys.argv[1] + "\\n"
    + ("stop_with_parent(" + sys.argv[2] + ")\\n" if sys.argv[2] else "")
    + "print('tied', flush=True)\\n"
    "time.sleep(600)\\n"
)
child = subprocess.Popen(
    [sys.executable, "-c", child_code],
    env=child_environment(dict(os.environ)), stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline() == "tied\\n"
print(child.pid, flush=True)
time.sleep(600)
"""


def _child_outlives_its_killed_launcher(
    setup: str, stop: str, wait: float = 30
) -> bool:
    """Whether the child is still running ``wait`` seconds after its launcher
    was killed (it is killed then, if so)."""
    launcher = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, setup, stop],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(launcher.stdout.readline())
        assert alive(child)
        launcher.kill()
        launcher.wait(timeout=30)
        deadline = time.monotonic() + wait
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        stayed = alive(child)
        if stayed:
            os.kill(child, signal.SIGKILL)
        return stayed
    finally:
        launcher.kill()
        launcher.wait()


def test_a_child_stops_when_its_launcher_is_killed_outright():
    # The kernel's SIGTERM ends it; the watcher's action does nothing. (The
    # 30 s wait only catches a hang.)
    assert not _child_outlives_its_killed_launcher("pass", "lambda: None")


def test_a_child_that_never_handles_the_signal_is_stopped_by_the_watcher():
    # SIGTERM is ignored, as when a signal is lost: the watcher's action ends it.
    assert not _child_outlives_its_killed_launcher(
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)", "lambda: os._exit(0)"
    )


def test_a_child_that_ignores_the_signal_and_has_no_watcher_action_stays():
    # The test can fail: without an action, an ignored signal leaves it running.
    child_stays = _child_outlives_its_killed_launcher(
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)", "lambda: None", wait=3
    )
    assert child_stays


def test_the_watcher_acts_once_the_parent_is_not_the_one_it_was_given():
    gone = threading.Event()
    _watch_parent(os.getppid() + 1, gone.set, every=0.01)
    assert gone.wait(10)


def test_a_command_that_stops_on_signals_stops_with_its_launcher():
    # What a benchmark's coordinator run does: its stop-signal handlers tie it.
    assert not _child_outlives_its_killed_launcher(
        "from splitrec.common.signals import raise_on_stop_signals\n"
        "raise_on_stop_signals()",
        "",
    )


def test_the_tie_is_not_handed_down_to_the_child_s_own_children():
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os\n"
            "from splitrec.common.lifetime import stop_with_parent, PARENT_VARIABLE\n"
            "stop_with_parent(lambda: None)\n"
            "print(os.environ.get(PARENT_VARIABLE))\n",
        ],
        env=child_environment(dict(os.environ)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.stdout == "None\n", child.stderr
