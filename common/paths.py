"""The folders a process writes to: checked at start-up, and never left.

Every path built from a name (a job's folder under ``output_dir`` or
``runs_dir``) is resolved and checked to stay inside its folder, so neither a
crafted name nor a symbolic link leads a write elsewhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from splitrec.common.errors import ConfigError


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
    """Proves ``folder`` writable, or, while it is missing, that it can be made
    (by writing and removing a file in it or in its nearest existing folder).
    It makes nothing: whoever writes there first makes it, so a command refused
    later leaves no empty folder behind.

    Raises ``ConfigError`` naming the folder, the config key and file, and the
    reason (a file in its place, a read-only folder or disk, no permission).
    """
    where = f"{folder} ({key!r} in {source})"
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        blocking = "" if existing == Path(folder).absolute() else f" ({existing})"
        raise ConfigError(
            f"{where} is not a folder{blocking}; remove that file or change {key}"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        made = (
            ""
            if existing == Path(folder).absolute()
            else f" (it would be made in {existing})"
        )
        raise ConfigError(
            f"{where} is not a writable folder{made}: {exc.strerror or exc}; make "
            f"it writable or change {key}"
        ) from None
