"""The PSI worker processes leave when the server that started them is killed
outright, so a SIGKILL during an alignment leaves nothing of ours behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support import ROOT, alive, descendants

# Starts both workers (two chunks' worth of work), says so, then waits.
_SERVER = """
import time
from splitrec.privacy import psi
with psi.Blinder(psi.new_key(), workers=2) as blinder:
    for _ in blinder.hash_and_blind_chunks([str(i) for i in range(45_000)]):
        pass
    print("ready", flush=True)
    time.sleep(300)
"""


def test_workers_leave_when_their_server_is_killed():
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    helpers: set[int] = set()
    try:
        assert server.stdout.readline().strip() == "ready"
        helpers = descendants(server.pid)
        assert len(helpers) >= 2  # the two workers (and the resource tracker)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        deadline = time.monotonic() + 20
        while any(alive(p) for p in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in helpers if alive(p)]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in helpers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
