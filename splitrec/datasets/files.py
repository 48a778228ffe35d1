"""Writing the data sets the project prepares (MovieLens, UCI Adult): atomic
files (a temporary file beside the target, then a rename) and lines of columns."""

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_FILE_MODE = 0o644


class DataPreparationError(Exception):
    """Input data is missing, corrupt or malformed; the message says what to do."""


@dataclass(frozen=True)
class PreparedFiles:
    """Paths of the party CSVs a preparation wrote and their data rows; ``carol``
    is the third party's file, in a layout of three parties."""

    alice: Path
    bob: Path
    rows: int
    carol: Path | None = None


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on
    success, delete it on any error."""
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str, encoding: str) -> None:
    """Write ``text`` to ``target`` atomically with Unix newlines."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(text.encode(encoding))


def join_lines(template: str, *columns: Iterable[object]) -> str:
    """Format columns row-wise with ``template``; Unix newlines, trailing one."""
    return "\n".join(map(template.format, *columns)) + "\n"
