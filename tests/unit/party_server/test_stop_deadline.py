"""A party server whose stop hangs still ends: after the stop deadline it logs
every thread's stack and exits 0, so no signal leaves it behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.support import ROOT

# Runs the real ``main`` with a server whose ``stop`` never returns.
_HANGING_SERVER = textwrap.dedent(
    """
    import sys, threading, time
    import splitrec.party_server.__main__ as entry
    import splitrec.party_server.server as server

    entry.STOP_DEADLINE = 1.0

    class Hanging:
        port = 1
        def stop(self):
            time.sleep(3600)

    server.start_party = lambda *args, **kwargs: Hanging()
    sys.exit(entry.main(["--config", sys.argv[1]]))
    """
)


def test_a_stop_that_hangs_ends_after_the_deadline_with_every_stack(party_files):
    process = subprocess.Popen(
        [sys.executable, "-c", _HANGING_SERVER, str(party_files.alice)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith("READY party=alice")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
    stderr = process.stderr.read()

    assert code == 0, stderr
    assert "party alice: stopping took over 1 s" in stderr
    # The stack of the thread that hung is in the log, down to the stuck call.
    stacks = stderr.split("stopping took over", 1)[1]
    assert "Current thread" in stacks or "Thread 0x" in stacks
    assert " in stop" in stacks
