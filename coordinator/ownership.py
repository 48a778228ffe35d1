"""One coordinator per job: a lock on the job's runs folder, and a hold on the
job at every party.

- ``RunLock``: ``runs_dir/<job>/coordinator.lock``, locked with ``flock`` while
  the coordinator runs and holding its PID, host and start time. A second
  coordinator on the same runs folder is refused at once with those details.
  The kernel drops the lock when its process dies, so a lock left by a dead
  coordinator is taken over (and said so).
- ``Holds``: one ``HoldJob`` stream per party for the job's whole run. A party
  refuses another coordinator's claim while the stream is open; the streams
  re-open by themselves after a party restarts. A refusal ends the run with
  the party's message, which names the other coordinator.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import grpc

from splitrec.common.errors import JobFailedError, PeerError
from splitrec.common.folder_lock import FolderLock
from splitrec.coordinator.client import PartyClient

logger = logging.getLogger(__name__)

LOCK_FILE = "coordinator.lock"


class RunLock(FolderLock):
    """The lock on one job's runs folder (a context manager)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(
            folder,
            LOCK_FILE,
            "coordinator",
            "a job runs under one coordinator at a time: wait for it to finish or "
            "stop it",
        )


class _Hold(threading.Thread):
    """Keeps one party's HoldJob stream open, re-opening it when it breaks."""

    def __init__(self, client: PartyClient, job_id: str) -> None:
        super().__init__(name=f"hold-{client.name}", daemon=True)
        self.client = client
        self.job_id = job_id
        self.held = threading.Event()
        self.refusal: PeerError | None = None
        self._stopping = threading.Event()
        self._call: grpc.Call | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        pause = 0.2
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self._call = self.client.hold(self.job_id)
            try:
                for _ in self._call:
                    self.held.set()
                    pause = 0.2
            except grpc.RpcError as exc:
                self.held.clear()
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    self.refusal = self.client.rpc_error("HoldJob", exc)
                    return
            self.held.clear()
            self._stopping.wait(pause)
            pause = min(pause * 2, 5.0)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            if self._call is not None:
                self._call.cancel()


class Holds:
    """The job held at every party for as long as the coordinator runs it."""

    def __init__(self, clients: dict[str, PartyClient], job_id: str) -> None:
        self._holds = {name: _Hold(c, job_id) for name, c in clients.items()}

    def __enter__(self) -> Holds:
        for hold in self._holds.values():
            hold.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for hold in self._holds.values():
            hold.stop()
        for hold in self._holds.values():
            hold.join(5.0)

    def check(self) -> None:
        """Raises a fatal ``JobFailedError`` when a party gave the job to
        another coordinator."""
        for hold in self._holds.values():
            if hold.refusal is not None:
                raise JobFailedError(str(hold.refusal), fatal=True)

    def wait(self, timeout: float) -> None:
        """Waits until every party holds the job for this coordinator; raises
        ``PeerError`` (recoverable) when one does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        for name, hold in self._holds.items():
            while not hold.held.wait(0.1):
                self.check()
                if time.monotonic() >= deadline:
                    raise PeerError(
                        f"party {name} did not confirm that it holds the job for "
                        f"this coordinator within {timeout:.0f} s",
                        "UNAVAILABLE",
                    )
        self.check()
