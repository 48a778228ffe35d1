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
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.common.atomic import write_atomically
from splitrec.common.batching import index_dtype
from splitrec.party_server.data_slice import DataSlice

logger = logging.getLogger(__name__)

CACHE_FILE = "alignment.npz"
# Aligned rows sorted by ID in memory at once; more go through files.
_SORT_IN_MEMORY = 1_000_000


@dataclass(frozen=True)
class Alignment:
    """This party's rows of the intersection, in the common (ID) order."""

    rows: np.ndarray
    cached: bool


def cache_key(job_id: str, digests: dict[str, str]) -> str:
    """The key of an alignment: the job and every party's ID-column digest."""
    text = job_id + "\n" + "\n".join(f"{n}:{d}" for n, d in sorted(digests.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def order_by_id(
    data: DataSlice,
    rows: np.ndarray,
    folder: Path | None = None,
    in_memory: int = _SORT_IN_MEMORY,
) -> np.ndarray:
    """``rows`` ordered by their IDs: the order every party computes alike.

    With ``folder``, more than ``in_memory`` rows are sorted through files
    there: the rows go to buckets by ranges of their IDs (cut at IDs sampled
    evenly from them), and the buckets, each sorted alone, follow one another.
    Memory is then the rows, the result and one bucket, not every ID."""
    if folder is None or rows.size <= in_memory:
        return data.ids.order(rows)
    parts = 2 * -(-rows.size // in_memory)
    sample = np.sort(data.ids.raw(rows[:: max(1, rows.size // (64 * parts))]))
    cuts = np.unique(sample[(np.arange(1, parts) * sample.size) // parts])
    ordered = np.empty_like(rows)
    with tempfile.TemporaryDirectory(prefix=".order-", dir=folder) as spool:
        names = [Path(spool) / f"{b}" for b in range(cuts.size + 1)]
        for start in range(0, rows.size, in_memory):
            part = rows[start : start + in_memory]
            ids = data.ids.raw(part)
            which = np.searchsorted(cuts, ids, side="right")
            by_bucket = np.argsort(which, kind="stable")
            bounds = np.searchsorted(which[by_bucket], np.arange(len(names) + 1))
            for bucket in np.flatnonzero(np.diff(bounds)):
                chosen = by_bucket[bounds[bucket] : bounds[bucket + 1]]
                with names[bucket].with_suffix(".ids").open("ab") as handle:
                    handle.write(ids[chosen].tobytes())
                with names[bucket].with_suffix(".rows").open("ab") as handle:
                    handle.write(part[chosen].tobytes())
        done = 0
        for name in names:
            if not name.with_suffix(".rows").exists():
                continue
            ids = np.fromfile(
                name.with_suffix(".ids"), dtype=data.ids.raw(rows[:1]).dtype
            )
            held = np.fromfile(name.with_suffix(".rows"), dtype=rows.dtype)
            ordered[done : done + held.size] = held[np.argsort(ids, kind="stable")]
            done += held.size
    return ordered


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
