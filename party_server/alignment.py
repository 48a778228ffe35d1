"""The rows a party trains on after private ID alignment, and their cache.

Every party ends up with the same ordered list of intersecting IDs: its own row
positions of those IDs, ordered by ID (the same order at every party, since the
IDs are equal). The cache holds only this party's own row positions, keyed by
the digests of every party's ID column, so it is reused exactly while no data
file changed.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.common.atomic import write_atomically
from splitrec.common.batching import index_dtype
from splitrec.party_server.data_slice import DataSlice

logger = logging.getLogger(__name__)

CACHE_FILE = "alignment.npz"


@dataclass(frozen=True)
class Alignment:
    """This party's rows of the intersection, in the common (ID) order."""

    rows: np.ndarray
    cached: bool


def cache_key(job_id: str, digests: dict[str, str]) -> str:
    """The key of an alignment: the job and every party's ID-column digest."""
    text = job_id + "\n" + "\n".join(f"{n}:{d}" for n, d in sorted(digests.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def order_by_id(data: DataSlice, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by their IDs: the order every party computes alike."""
    return data.ids.order(rows)


def in_id_order(data: DataSlice, rows: np.ndarray, chunk: int = 1_000_000) -> bool:
    """Whether ``rows`` are in the order ``order_by_id`` gives (IDs are unique,
    so: their IDs strictly increase), read a chunk at a time."""
    last = None
    for start in range(0, rows.size, chunk):
        ids = data.ids.raw(rows[start : start + chunk])
        if (last is not None and ids.size and not last < ids[0]) or not (
            ids[:-1] < ids[1:]
        ).all():
            return False
        last = ids[-1] if ids.size else last
    return True


def plain_alignment(slices: list[DataSlice]) -> list[np.ndarray]:
    """Each slice's rows of the IDs all hold, in ID order, by a plain join.

    The result PSI computes without anyone seeing the others' IDs; for the
    centralized baseline, which holds every party's data anyway.
    """
    every = [data.ids.raw(slice(None)) for data in slices]
    common = every[0]
    for ids in every[1:]:
        common = np.intersect1d(common, ids, assume_unique=True)
    aligned = []
    for ids in every:
        order = np.argsort(ids, kind="stable")
        aligned.append(order[np.searchsorted(ids, common, sorter=order)])
    return aligned


def read_cache(folder: Path, key: str) -> np.ndarray | None:
    """The cached rows for ``key``, or ``None`` (missing, stale or unreadable)."""
    path = folder / CACHE_FILE
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            rows = stored["rows"]
            return rows.astype(index_dtype(int(rows.max()) + 1 if rows.size else 0))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable alignment cache %s: %s", path, exc)
        return None


def write_cache(folder: Path, key: str, rows: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), rows=rows)
    write_atomically(folder / CACHE_FILE, buffer.getvalue(), mode=0o600)
