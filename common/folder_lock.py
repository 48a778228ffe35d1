"""An exclusive lock on a folder for the life of one process.

A lock file in the folder is locked with ``flock`` and holds who locked it (its
role, PID, host, start time and command). A second process is refused at once
with those details. The kernel drops the lock when its process dies, however it
dies, so a lock left by a dead process is taken over (and said so). Used for a
job's runs folder (one coordinator per job) and a party's ``output_dir`` (one
party server per folder).

A process removes its lock file when it lets go, and the folders the lock had
to make when they are left empty: a refused command leaves nothing behind. (A
process that opened the file just before its holder removed it finds, once
locked, that the name leads elsewhere, and locks the new file instead.)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from splitrec.common.errors import OwnershipError

logger = logging.getLogger(__name__)

# Lock files this process holds, with how many ``FolderLock``s entered each: the
# demo locks the job's runs folder before it starts the parties, the job driver
# again.
_HELD: dict[Path, int] = {}
_HELD_LOCK = threading.Lock()


class FolderLock:
    """Use as a context manager; ``role`` says who holds it ("coordinator")."""

    def __init__(self, folder: Path, file_name: str, role: str, advice: str) -> None:
        self.path = Path(folder).resolve() / file_name
        self._role = role
        self._advice = advice
        self._fd: int | None = None
        # Folders this lock made, the deepest first.
        self._made: list[Path] = []

    def __enter__(self) -> FolderLock:
        with _HELD_LOCK:
            if self.path in _HELD:
                _HELD[self.path] += 1
                return self
            try:
                self._fd = self._lock()
            except BaseException:
                self._tidy()
                raise
            _HELD[self.path] = 1
        return self

    def __exit__(self, *exc: object) -> None:
        with _HELD_LOCK:
            _HELD[self.path] -= 1
            if _HELD[self.path]:
                return
            del _HELD[self.path]
        if self._fd is not None:
            # Removed while still locked: whoever opened it meanwhile retries.
            self.path.unlink(missing_ok=True)
            os.close(self._fd)  # closing drops the lock
            self._fd = None
        self._tidy()

    def _tidy(self) -> None:
        """Removes the folders this lock made, while they are empty."""
        for folder in self._made:
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue  # never made (a failed mkdir) or gone already
            except OSError:
                break  # not empty: what is above it stays too

    def _lock(self) -> int:
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read(fd), self._role)
                os.close(fd)
                raise OwnershipError(
                    f"{self.path.parent} is in use by {holder} (lock file "
                    f"{self.path}); {self._advice}"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # its holder removed it as we opened it
        previous = _read(fd)
        if previous:
            logger.warning(
                "taking over %s from %s, which stopped without releasing it",
                self.path,
                _describe(previous, self._role),
            )
        mine = {
            "role": self._role,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(mine) + "\n").encode("utf-8"), 0)
        os.fsync(fd)
        return fd

    def _open(self) -> int:
        """The lock file, made (with its folders) when missing."""
        folder = self.path.parent
        tries = 3
        while True:
            missing = [folder, *folder.parents]
            missing = missing[: next(i for i, f in enumerate(missing) if f.exists())]
            folder.mkdir(parents=True, exist_ok=True)
            self._made = self._made or missing
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # another process removed the folder
                tries -= 1
                if not tries:
                    raise


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"unreadable": True}


def _describe(holder: dict, role: str) -> str:
    """Who holds (or held) a lock, from its file; ``role`` when it does not say."""
    if not holder or "pid" not in holder:
        return f"another {role}"
    return (
        f"{holder.get('role', role)} pid {holder['pid']} on "
        f"{holder.get('host', '?')} (started {holder.get('started', '?')})"
    )
