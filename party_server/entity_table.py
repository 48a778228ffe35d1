"""An entity table for online scoring: one row per entity (a user, a movie),
keyed by one column, holding the raw columns the party's exported model reads.

The table is a CSV file of the party's own, named in its ``serving`` config.
Values stay text, exactly as written: the exported model encodes them with the
job's fitted preprocessing. A file is read whole and checked (columns present,
every key written once and non-empty) before it replaces the table in use.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from splitrec.common.errors import DataError


@dataclass(frozen=True)
class FileSignature:
    """What changes when a file is replaced or rewritten."""

    inode: int
    size: int
    modified_ns: int


def file_signature(path: Path) -> FileSignature | None:
    """The file's signature, ``None`` when it cannot be read."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return FileSignature(found.st_ino, found.st_size, found.st_mtime_ns)


@dataclass(frozen=True)
class EntityTable:
    path: Path
    key: str
    # SHA-256 of the file's bytes: equal files, equal digests.
    digest: str
    signature: FileSignature | None
    index: dict[str, int]
    # Each used column's values as text, in file order.
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.index)

    def positions(self, keys: Sequence[str]) -> np.ndarray:
        """Each key's row (int64), -1 for a key the table does not hold."""
        index = self.index
        return np.fromiter((index.get(k, -1) for k in keys), np.int64, len(keys))


def load_entity_table(path: Path, key: str, columns: Sequence[str]) -> EntityTable:
    """Reads ``path`` keyed by ``key`` with the ``columns`` the model needs;
    ``DataError`` naming the file (and line) when it does not fit."""
    signature = file_signature(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(
            f"entity table {path}: cannot be read ({exc.strerror or exc}); "
            "check serving.table.path"
        ) from None
    try:
        frame = pd.read_csv(
            io.BytesIO(raw), dtype=str, keep_default_na=False, na_filter=False
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"entity table {path}: not a readable CSV: {exc}") from None
    needed = list(dict.fromkeys([key, *columns]))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"entity table {path}: lacks the column(s) {missing} (the key "
            f"{key!r} and what the model reads); its header has "
            f"{list(frame.columns)}"
        )
    keys = frame[key].to_numpy(dtype=object)
    empty = np.flatnonzero(keys == "")
    if len(empty):
        raise DataError(
            f"entity table {path}, line {empty[0] + 2}: the key column {key!r} is empty"
        )
    index: dict[str, int] = {}
    for row, value in enumerate(keys):
        first = index.setdefault(value, row)
        if first != row:
            raise DataError(
                f"entity table {path}, line {row + 2}: key {value!r} of column "
                f"{key!r} is already on line {first + 2}; each entity is "
                "written once"
            )
    return EntityTable(
        path=Path(path),
        key=key,
        digest=hashlib.sha256(raw).hexdigest(),
        signature=signature,
        index=index,
        columns={c: frame[c].to_numpy(dtype=object) for c in columns},
    )
