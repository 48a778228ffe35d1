"""A party server stops when the process that launched it dies, however it died."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from splitrec.common.lifetime import _watch_parent
from tests.support import alive

# A launcher that starts a child tied to it, prints the child's pid, then waits
# to be killed; the child waits for its SIGTERM.
_LAUNCHER = """
import os, subprocess, sys, time
from splitrec.common.lifetime import child_environment
child = subprocess.Popen(
    [sys.executable, "-c",
     "import time; from splitrec.common.lifetime import stop_with_parent; "
     "stop_with_parent(); print('tied', flush=True); time.sleep(600)"],
    env=child_environment(dict(os.environ)), stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline() == "tied\\n"
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_child_stops_when_its_launcher_is_killed_outright():
    launcher = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(launcher.stdout.readline())
        assert alive(child)
        launcher.kill()
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 30  # only catches a hang
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        launcher.kill()
        launcher.wait()


def test_the_watcher_acts_once_the_parent_is_not_the_one_it_was_given():
    gone = threading.Event()
    _watch_parent(os.getppid() + 1, gone.set, every=0.01)
    assert gone.wait(10)
