"""The folders a process writes to: checked at start-up, and never left.

Every path built from a name (a job's folder under ``output_dir`` or
``runs_dir``) is resolved and checked to stay inside its folder, so neither a
crafted name nor a symbolic link leads a write elsewhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common.errors import ConfigError


def confined(root: Path, *parts: str) -> Path:
    """``root/parts`` resolved, refused unless it stays inside ``root``.

    Raises ``ConfigError`` naming both paths, for a part that climbs out (``..``
    or an absolute path) and for a symbolic link that leads elsewhere.
    """
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ConfigError(
            f"{base.joinpath(*parts)} resolves to {path}, outside {base}; a job's "
            "files stay in its own folder (remove the link or rename the job)"
        )
    return path


def check_writable(folder: Path, key: str, source: Path | str) -> None:
    """Makes ``folder`` if it is missing and proves it writable by writing a file.

    Raises ``ConfigError`` naming the folder, the config key and file, and the
    reason (a file in its place, a read-only folder or disk, no permission).
    """
    where = f"{folder} ({key!r} in {source})"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{where} is not a folder; remove that file or change {key}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{where} is not a writable folder: {exc.strerror or exc}; make it "
            f"writable or change {key}"
        ) from None
