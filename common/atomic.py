"""Atomic file writes: a reader sees the old file or the new one, never half."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from splitrec.common.errors import DiskFullError, StorageError

_FULL = (errno.ENOSPC, errno.EDQUOT)


def storage_error(path: Path, error: OSError) -> StorageError:
    """The error to raise for a failed write of ``path``: it names the path, the
    reason and what to do."""
    reason = error.strerror or str(error)
    if error.errno in _FULL:
        return DiskFullError(
            f"cannot write {path}: {reason}; free space on that disk and run the "
            "job again (it resumes from its last checkpoint)"
        )
    return StorageError(
        f"cannot write {path}: {reason}; the folder must be a writable directory"
    )


def write_atomically(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Writes ``data`` (text as UTF-8) to ``path`` with permissions ``mode``.

    The bytes go to a temporary file in the same folder, are flushed to disk and
    renamed over ``path``; the folder is synced so that the rename survives a
    crash. On failure the temporary file is removed and ``path`` is untouched;
    the error is a ``StorageError`` (``DiskFullError`` when no space is left)
    naming the path.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    write_atomically_with(path, lambda handle: handle.write(payload), mode)


def write_atomically_with(
    path: Path, write: Callable[[BinaryIO], object], mode: int = 0o644
) -> None:
    """Like ``write_atomically``, the bytes written by ``write`` to the open
    file it is given (a large file never whole in memory)."""
    try:
        _write(Path(path), write, mode)
    except OSError as exc:
        raise storage_error(Path(path), exc) from None


def _write(path: Path, write: Callable[[BinaryIO], object], mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
