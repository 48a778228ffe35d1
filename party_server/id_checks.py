"""A table's IDs checked for repeats in bounded memory.

The IDs are spread over bucket files on disk (``psi_spool.Buckets``) by a
64-bit hash of their bytes, which leads each stored value; two equal IDs always
share a bucket, so each bucket is checked alone, in memory. Memory is that of
one chunk or one bucket, whatever the count of IDs; the disk holds the IDs and
16 bytes a row until the check ends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from splitrec.party_server.psi_spool import Buckets, bucket_count
from splitrec.party_server.row_store import IdColumn

_CHUNK = 1_000_000
# IDs checked in memory at once; more go through bucket files.
_IN_MEMORY = 1_000_000
_HASH_BYTES = 8
# FNV-1a, 64-bit.
_OFFSET = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)


def _keyed(raw: np.ndarray) -> bytes:
    """Each ID (``S{w}``) after the big-endian FNV-1a hash of its bytes."""
    width = raw.dtype.itemsize
    octets = raw.view(np.uint8).reshape(-1, width)
    hashed = np.full(len(raw), _OFFSET, dtype=np.uint64)
    for column in range(width):
        hashed ^= octets[:, column]
        hashed *= _PRIME
    lead = hashed.astype(">u8").view(np.uint8).reshape(-1, _HASH_BYTES)
    return np.concatenate([lead, octets], axis=1).tobytes()


def _repeats(values: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
    """Among one bucket's values, the positions of the repeated value found
    first in the table (ascending), or None."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not same.size:
        return None
    repeated = np.unique(ordered[same])
    held = positions[np.isin(values, repeated)]
    first = values[positions == held.min()][0]
    return np.sort(positions[values == first])


def first_repeat(ids: IdColumn, folder: Path) -> np.ndarray | None:
    """The rows (ascending) holding the repeated ID that occurs first in the
    table, or None when every ID is unique. Past a million IDs, bucket files
    live in a temporary folder under ``folder`` while it runs."""
    if len(ids) <= _IN_MEMORY:
        raw = ids.raw(slice(None))
        return _repeats(raw, np.arange(raw.size)) if raw.size else None
    width = _HASH_BYTES + ids.raw(slice(0, 1)).dtype.itemsize
    with tempfile.TemporaryDirectory(prefix=".ids-", dir=folder) as spool:
        buckets = Buckets(Path(spool), "ids", width, bucket_count(len(ids)))
        for _, chunk in ids.raw_chunks(_CHUNK):
            buckets.add(_keyed(chunk))
        best: np.ndarray | None = None
        for bucket in range(buckets.count):
            found = _repeats(*buckets.bucket(bucket))
            if found is not None and (best is None or found[0] < best[0]):
                best = found
    return best
