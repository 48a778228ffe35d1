"""PSI's values on disk: a party aligns any number of IDs in bounded memory.

Blinded values arrive and leave a chunk at a time; what must be kept until the
end is kept in files of one alignment's own folder:

- ``ValueFile``: fixed-width values in the order they came (row order), read
  back in chunks or at given rows through a memory map;
- ``Buckets``: values with their positions, spread over bucket files by their
  leading bytes (blinded values are uniform, so the buckets are even). Two sets
  bucketed alike are matched one bucket at a time: ``matches`` (which of mine
  occur in theirs) and ``locate`` (where each of theirs is among mine).

Memory is that of one chunk or one bucket, whatever the count of IDs.
"""

from __future__ import annotations

import math
import mmap
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from splitrec.common.atomic import storage_error
from splitrec.common.batching import index_dtype

# Values a bucket holds at most, on average, when a set is bucketed.
_BUCKET_VALUES = 250_000
_MAX_BUCKETS = 256
_POSITION = np.dtype(np.int64)


# The folder of one alignment's values, in the job's folder.
SPOOL_PREFIX = ".psi-"


def remove_spool_leftovers(output_dir: Path) -> list[Path]:
    """Removes the value folders alignments cut short by a crash left in the
    jobs of ``output_dir`` (run at start-up, before any alignment)."""
    stale = sorted(Path(output_dir).glob(f"*/{SPOOL_PREFIX}*"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def bucket_count(values: int) -> int:
    """Buckets for a set of ``values`` values (both sets matched use one
    count: that of the larger)."""
    return max(1, min(_MAX_BUCKETS, math.ceil(values / _BUCKET_VALUES)))


def _rows(values: bytes, width: int) -> np.ndarray:
    if len(values) % width:
        raise ValueError(
            f"{len(values)} bytes is not a whole number of {width}-byte values"
        )
    return np.frombuffer(values, dtype=f"S{width}")


class ValueFile:
    """Fixed-width values appended in order, then read back: once closed, the
    file is read through a handle opened then, so its folder may go first."""

    def __init__(self, path: Path, width: int) -> None:
        self.path = Path(path)
        self.width = width
        self.count = 0
        try:
            self._handle = self.path.open("wb")
        except OSError as exc:
            raise storage_error(self.path, exc) from None
        self._reader: BinaryIO | None = None

    def append(self, values: bytes) -> None:
        self.count += len(_rows(values, self.width))
        try:
            self._handle.write(values)
        except OSError as exc:
            raise storage_error(self.path, exc) from None

    def close(self) -> None:
        """Ends the writing; the values can be read from now on."""
        self._handle.close()
        self._reader = self.path.open("rb")

    def chunks(self, size: int) -> Iterator[bytes]:
        """The values in order, ``size`` at a time."""
        assert self._reader is not None, "close the file before reading it"
        step = size * self.width
        for offset in range(0, self.count * self.width, step):
            yield os.pread(self._reader.fileno(), step, offset)

    def take(self, rows: np.ndarray) -> bytes:
        """The values at ``rows``, in that order."""
        assert self._reader is not None, "close the file before reading it"
        if not rows.size:
            return b""
        mapped = mmap.mmap(self._reader.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            values = np.frombuffer(mapped, dtype=f"S{self.width}")
            found = np.take(values, rows).tobytes()
            del values
        finally:
            mapped.close()
        return found

    def release(self) -> None:
        if self._reader is not None:
            self._reader.close()


class Buckets:
    """Values and their positions (0, 1, ... in the order added), kept in
    ``count`` bucket files under ``folder`` by their leading four bytes."""

    def __init__(self, folder: Path, name: str, width: int, count: int) -> None:
        self.width = width
        self.count = count
        self.size = 0
        self._paths = [
            (Path(folder) / f"{name}-{b}.values", Path(folder) / f"{name}-{b}.rows")
            for b in range(count)
        ]
        try:
            for values, rows in self._paths:
                values.write_bytes(b"")
                rows.write_bytes(b"")
        except OSError as exc:
            raise storage_error(Path(folder), exc) from None

    def add(self, values: bytes) -> None:
        """Appends values (their positions follow the ones added before)."""
        try:
            self._add(values)
        except OSError as exc:
            raise storage_error(self._paths[0][0].parent, exc) from None

    def _add(self, values: bytes) -> None:
        found = _rows(values, self.width)
        positions = np.arange(self.size, self.size + found.size, dtype=_POSITION)
        self.size += found.size
        raw = np.frombuffer(values, np.uint8).reshape(-1, self.width)
        lead = raw[:, :4].copy().view(">u4").ravel()
        which = lead % np.uint32(self.count)
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(self.count + 1))
        for bucket in range(self.count):
            start, end = bounds[bucket], bounds[bucket + 1]
            if start == end:
                continue
            part = order[start:end]
            value_path, row_path = self._paths[bucket]
            with value_path.open("ab") as handle:
                handle.write(found[part].tobytes())
            with row_path.open("ab") as handle:
                handle.write(positions[part].tobytes())

    def bucket(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One bucket's values (``S{width}``) and positions."""
        value_path, row_path = self._paths[index]
        values = np.frombuffer(value_path.read_bytes(), dtype=f"S{self.width}")
        return values, np.frombuffer(row_path.read_bytes(), dtype=_POSITION)


def _alike(mine: Buckets, theirs: Buckets) -> None:
    if (mine.count, mine.width) != (theirs.count, theirs.width):
        raise ValueError("sets matched must be bucketed alike")


def matches(mine: Buckets, theirs: Buckets) -> np.ndarray:
    """Positions in ``mine`` whose value also occurs in ``theirs`` (ascending;
    int32 while ``mine`` has fewer than 2^31 values)."""
    _alike(mine, theirs)
    kind = index_dtype(mine.size)
    found = []
    for bucket in range(mine.count):
        values, positions = mine.bucket(bucket)
        other, _ = theirs.bucket(bucket)
        found.append(positions[np.isin(values, other)].astype(kind))
    every = np.concatenate(found) if found else np.zeros(0, kind)
    every.sort()
    return every


def _found_in(
    mine: Buckets, wanted: Buckets, bucket: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In one bucket: for each of ``wanted``'s values there, its position in
    ``wanted``, whether ``mine`` holds it, and where (valid where held)."""
    values, positions = mine.bucket(bucket)
    asked, asked_at = wanted.bucket(bucket)
    if not asked.size or not values.size:
        return asked_at, np.zeros(asked.size, bool), np.zeros(asked.size, _POSITION)
    order = np.argsort(values)
    found = np.minimum(np.searchsorted(values, asked, sorter=order), values.size - 1)
    hit = values[order[found]] == asked
    return asked_at, hit, positions[order[found]]


def locate(mine: Buckets, wanted: Buckets) -> np.ndarray:
    """For each value of ``wanted`` (by its position there), the position in
    ``mine`` holding the same value; -1 where none does. The positions are
    int32 while ``mine`` has fewer than 2^31 values."""
    _alike(mine, wanted)
    where = np.full(wanted.size, -1, index_dtype(mine.size))
    for bucket in range(mine.count):
        asked_at, hit, held_at = _found_in(mine, wanted, bucket)
        where[asked_at[hit]] = held_at[hit]
    return where


def holds_all(mine: Buckets, wanted: Buckets) -> bool:
    """Whether ``mine`` holds every value of ``wanted`` (a bucket at a time)."""
    _alike(mine, wanted)
    return all(_found_in(mine, wanted, b)[1].all() for b in range(mine.count))
