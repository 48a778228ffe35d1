"""Signals to ``coordinator demo`` at every phase of a job: the parties it started
stop, the exit code is 128 + the signal's number, and no process of ours stays
behind (party servers, their PSI workers, anything they started). SIGKILL, which
no process can catch, still takes the parties down with the coordinator."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from splitrec.coordinator.local import (
    START_ATTEMPTS,
    bind_failed,
    pick_addresses,
)
from splitrec.v1 import control_pb2, control_pb2_grpc
from tests.support import ROOT, alive, demo_args, descendants, stat_fields

pytestmark = pytest.mark.slow


class Demo:
    """``splitrec demo`` with its stderr read line by line."""

    def __init__(self, files, folder: Path) -> None:
        files.edit("job", epochs=2, checkpoint={"every_steps": 20})
        self.seen: set[int] = set()
        for _ in range(START_ATTEMPTS):  # fresh ports if a party's was taken
            self.addresses = pick_addresses(files)
            self._launch(files)
            if not self._bind_failed():
                break

    def _launch(self, files) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", *demo_args(files), "--log-level", "DEBUG"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.party_pids: dict[str, int] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _bind_failed(self, timeout: float = 300) -> bool:
        """Waits until both parties are up; True if the demo ended first
        because a party could not bind its port."""
        deadline = time.monotonic() + timeout
        while len(self.party_pids) < 2 and time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(10)
                return bind_failed("".join(self.log))
            time.sleep(0.05)
        return False

    def _read(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r"party (\w+) is up at \S+ \(pid (\d+)", line)
            if found:
                self.party_pids[found.group(1)] = int(found.group(2))
            self.lines.put(line)

    def wait_for_line(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in self.lines.get(timeout=0.5):
                    return
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        pytest.fail(f"never saw {text!r}; log:\n{''.join(self.log[-30:])}")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout=120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        pytest.fail(f"never reached {what}; log:\n{''.join(self.log[-30:])}")

    def bob_state(self) -> str:
        try:
            with grpc.insecure_channel(self.addresses["bob"]) as channel:
                stub = control_pb2_grpc.ControlStub(channel)
                return stub.GetStatus(control_pb2.StatusRequest(), timeout=2).state
        except grpc.RpcError:
            return ""

    def processes(self) -> set[int]:
        """The coordinator and all its descendants now (remembered for ``stop``)."""
        found = {self.process.pid, *descendants(self.process.pid)}
        self.seen |= found
        return found

    def stop(self) -> None:
        """Whatever the test saw and is still alive is killed (clean-up only)."""
        self.processes()
        for pid in self.seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


def _psi_running(demo: Demo) -> bool:
    bob = demo.party_pids.get("bob")
    return bob is not None and bool(descendants(bob))


def _phase(demo: Demo, phase: str) -> None:
    """Waits until the job is in ``phase``."""
    if phase == "psi":
        demo.wait_until(lambda: _psi_running(demo), "bob's PSI workers")
    elif phase == "training":
        demo.wait_for_line("rows aligned privately")
        demo.wait_until(lambda: demo.bob_state() == "training", "training")
    elif phase == "checkpoint":
        demo.wait_for_line("checkpoint 2: saving at every party")
    elif phase == "evaluation":
        demo.wait_for_line("epoch 1: evaluating at every party")


def _started_at(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), which tells a pid
    used again by a later process from the one the test saw."""
    fields = stat_fields(pid)
    return fields[19] if fields else None


def _gone(pids: set[int], timeout: float = 30) -> dict[int, str]:
    """Waits until every process of ``pids`` has ended; those still running
    after ``timeout``, each with its command line (a party server among them
    is asked to log its threads' stacks, to show where it is stuck)."""
    seen = {pid: _started_at(pid) for pid in pids}
    deadline = time.monotonic() + timeout
    while True:
        left = {
            pid
            for pid, start in seen.items()
            if alive(pid) and _started_at(pid) == start
        }
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    commands = {pid: _command(pid) for pid in left}
    servers = [pid for pid, command in commands.items() if "party_server" in command]
    for pid in servers:  # each writes its threads' stacks to its log
        os.kill(pid, signal.SIGUSR1)
    if servers:
        time.sleep(2)
    return commands


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def _logs(folder: Path) -> str:
    """The end of every party log under ``folder``, to explain a failure."""
    return "".join(
        f"\n--- {log}:\n" + "".join(log.read_text().splitlines(True)[-80:])
        for log in sorted(folder.rglob("*.log"))
    )


@pytest.mark.parametrize(
    ("signum", "phase"),
    [
        (signal.SIGTERM, "psi"),
        (signal.SIGTERM, "training"),
        (signal.SIGTERM, "checkpoint"),
        (signal.SIGTERM, "evaluation"),
        (signal.SIGINT, "training"),
        (signal.SIGHUP, "checkpoint"),
    ],
)
def test_a_signal_at_any_phase_stops_everything_the_demo_started(
    party_files, tmp_path, signum, phase
):
    demo = Demo(party_files, tmp_path)
    try:
        _phase(demo, phase)
        started = demo.processes()
        demo.process.send_signal(signum)
        code = demo.process.wait(timeout=60)
        left = _gone(started | demo.processes())
    finally:
        demo.stop()
    log = "".join(demo.log)
    assert code == 128 + signum, log[-3000:]
    assert f"stopped by {signal.Signals(signum).name}" in log
    assert len(started) >= 3, started  # the coordinator and both parties
    assert not left, f"still running: {left}{_logs(tmp_path)}"


def test_sigkill_of_the_coordinator_takes_the_parties_down(party_files, tmp_path):
    demo = Demo(party_files, tmp_path)
    try:
        _phase(demo, "training")
        started = demo.processes()
        demo.process.kill()
        demo.process.wait(timeout=30)
        left = _gone(started)
    finally:
        demo.stop()
    assert len(started) >= 3, started
    assert not left, (
        f"still running after the coordinator was killed: {left}{_logs(tmp_path)}"
    )
