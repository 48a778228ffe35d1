"""A party's encoded rows on disk, read a batch at a time.

A party writes its rows once, chunk by chunk, as it reads its table (see
``data_slice``): the three input matrices of ``PackedBatch``, the labels, the
row IDs and the users, each one flat file of fixed-width rows in a store
folder, described by ``layout.json``. IDs are stored as their UTF-8 bytes,
NUL-padded to the longest (so sorting the bytes sorts the IDs as Python sorts
them: UTF-8 keeps code point order).

Reading gives the same values as arrays in memory. A small file is
memory-mapped (resident at most whole); a large one is read with ``pread``, so
that what a batch touched does not stay resident (see ``_Mapped``). So a
party's memory does not grow with its rows; what does is only the per-row
index of a job (its rows' positions and their order), a few bytes a row.

A ``RowColumn`` is one such file seen through an optional ``positions`` array
(a job's aligned rows among the table's): views compose positions and never
copy a column.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.common.atomic import storage_error
from splitrec.common.batching import index_dtype
from splitrec.models.features import (
    FeatureShape,
    PackedBatch,
    columns_by_feature,
)

LAYOUT = "layout.json"
_MATRICES = {"indices": np.int32, "dense": np.uint8, "numeric": np.float32}
# Rows converted at a time where a whole column is rewritten or read in order.
_CHUNK = 1_000_000
# Files up to this size are memory-mapped (see ``_Mapped``).
_MAPPED_BYTES = 24 * 1024 * 1024
# Rows gathered from a larger file with one pread each; more are read in order.
_PREAD_ROWS = 65_536
# Strings rewritten at a time at their longest width.
_STRING_CHUNK = 250_000


class _Mapped:
    """One flat file of fixed-width rows, read-only.

    A file of up to ``_MAPPED_BYTES`` is memory-mapped and gathered from with
    ``np.take``: it is resident at most whole, whatever the table's size. A
    larger one is read with ``pread``, a row at a time for a batch and in
    order for many rows: mapping it would leave what a batch touched resident
    (the kernel maps whole large folios around each row, up to 2 MB), so the
    party's memory would grow with the table.
    """

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        size = shape[0] * self._row_bytes
        self._handle = path.open("rb") if size else None
        self.array: np.ndarray | None = None
        if size == 0:
            self.array = np.zeros(shape, dtype)
        elif size <= _MAPPED_BYTES:
            assert self._handle is not None
            mapped = mmap.mmap(self._handle.fileno(), size, access=mmap.ACCESS_READ)
            self.array = np.frombuffer(mapped, dtype=dtype).reshape(shape)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The rows at ``rows`` (an integer array), in that order."""
        if self.array is not None:
            return np.take(self.array, rows, axis=0)
        rows = np.asarray(rows)
        if rows.size > _PREAD_ROWS:
            return self._scan(rows)
        assert self._handle is not None
        width, fd = self._row_bytes, self._handle.fileno()
        pread = os.pread
        data = b"".join([pread(fd, width, r * width) for r in rows.tolist()])
        return self._rows(data, rows.size)

    def _scan(self, rows: np.ndarray) -> np.ndarray:
        """Many rows: the file read in order, a chunk at a time."""
        found = np.empty((rows.size, *self.shape[1:]), self.dtype)
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        starts = np.arange(0, self.shape[0] + _CHUNK, _CHUNK)
        bounds = np.searchsorted(wanted, starts)
        for start, first, last in zip(starts, bounds[:-1], bounds[1:], strict=False):
            if first == last:
                continue
            chunk = self.slice(int(start), min(int(start) + _CHUNK, self.shape[0]))
            found[order[first:last]] = chunk[wanted[first:last] - start]
        return found

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` (within the file), in memory."""
        if self.array is not None:
            return np.array(self.array[start:stop])
        assert self._handle is not None
        count = max(0, stop - start)
        data = os.pread(
            self._handle.fileno(), count * self._row_bytes, start * self._row_bytes
        )
        return self._rows(data, count)

    def _rows(self, data: bytes, count: int) -> np.ndarray:
        return np.frombuffer(data, self.dtype).reshape(count, *self.shape[1:]).copy()


class _InMemory:
    """An array in memory in place of a file (a constant column takes no
    memory per row: ``np.broadcast_to``)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.dtype = array.dtype
        self.shape = array.shape

    def gather(self, rows: np.ndarray) -> np.ndarray:
        # Indexing, not np.take: a broadcast array is never made whole.
        return np.array(self.array[rows])

    def slice(self, start: int, stop: int) -> np.ndarray:
        return np.array(self.array[start:stop])


class RowColumn:
    """A stored column (``[rows]`` or ``[rows, width]``), seen through
    ``positions`` when given: row ``i`` of the view is row ``positions[i]`` of
    the file. Indexing by rows returns an array in memory and leaves the
    process's resident memory as it was."""

    def __init__(
        self, mapped: _Mapped | _InMemory, positions: np.ndarray | None = None
    ) -> None:
        self._mapped = mapped
        self._positions = positions

    @property
    def dtype(self) -> np.dtype:
        return self._mapped.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        rows = (
            self._mapped.shape[0] if self._positions is None else self._positions.size
        )
        return (rows, *self._mapped.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self._mapped.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def _file_rows(self, rows: np.ndarray | slice) -> np.ndarray | slice:
        if self._positions is None:
            return rows
        return self._positions[rows]

    def __getitem__(self, rows: np.ndarray | slice) -> np.ndarray:
        """The rows at ``rows`` (an integer array or a slice), in memory."""
        where = self._file_rows(rows)
        if isinstance(where, slice):
            start, stop, step = where.indices(self._mapped.shape[0])
            found = self._mapped.slice(start, stop)
            return found if step == 1 else found[::step]
        return self._mapped.gather(where)

    def file_rows(self, rows: np.ndarray) -> np.ndarray:
        """Where rows ``rows`` of this view are in the file."""
        rows = np.asarray(rows)
        found = rows if self._positions is None else self._positions[rows]
        return found.astype(index_dtype(self._mapped.shape[0]), copy=False)

    def at(self, positions: np.ndarray) -> RowColumn:
        """The file's rows at ``positions`` (``file_rows``), in that order;
        columns of one slice share one array of positions."""
        return type(self)(self._mapped, positions)

    def view(self, rows: np.ndarray) -> RowColumn:
        """These rows only, in that order, without copying the column."""
        return self.at(self.file_rows(rows))

    def chunks(self, size: int = _CHUNK) -> Iterator[np.ndarray]:
        """The whole column in order, ``size`` rows at a time."""
        for start in range(0, len(self), size):
            yield self[slice(start, start + size)]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        whole = self[slice(None)]
        return whole if dtype is None else whole.astype(dtype)


def zero_labels(rows: int, tasks: int) -> RowColumn:
    """Labels that read 0 (``[rows]``, or ``[rows, tasks]`` for several)."""
    shape = (rows,) if tasks == 1 else (rows, tasks)
    return RowColumn(_InMemory(np.broadcast_to(np.float32(0), shape)))


def _decoded(raw: np.ndarray) -> np.ndarray:
    """Fixed-width UTF-8 bytes as a numpy string array."""
    try:
        return raw.astype(str)
    except UnicodeDecodeError:  # not ASCII: decode as UTF-8
        return np.char.decode(raw, "utf-8")


class IdColumn(RowColumn):
    """Stored strings (row IDs, users): indexing gives ``str`` arrays; ``raw``
    gives their UTF-8 bytes, which sort and compare as the strings do."""

    def __getitem__(self, rows: np.ndarray | slice) -> np.ndarray:
        return _decoded(super().__getitem__(rows))

    def raw(self, rows: np.ndarray | slice) -> np.ndarray:
        return RowColumn.__getitem__(self, rows)

    def raw_chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Every row's bytes in order, ``size`` rows at a time, each chunk
        with the row it starts at."""
        for start in range(0, len(self), size):
            yield start, self.raw(slice(start, start + size))

    @classmethod
    def of(cls, values: np.ndarray) -> IdColumn:
        """Strings held in memory (small data, tests)."""
        return cls(_InMemory(np.char.encode(np.asarray(values, str), "utf-8")))

    def tolist(self) -> list[str]:
        return self[slice(None)].tolist()

    def order(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` ordered by their strings (stable)."""
        return rows[np.argsort(self.raw(rows), kind="stable")]


class StoredFeatures:
    """A party's encoded inputs (see ``PackedBatch``), stored; ``take`` gives
    a batch's inputs as a compiled step takes them."""

    def __init__(
        self,
        shapes: tuple[FeatureShape, ...],
        indices: RowColumn,
        dense: RowColumn,
        numeric: RowColumn,
    ) -> None:
        self.shapes = shapes
        self._columns = (indices, dense, numeric)

    @property
    def num_rows(self) -> int:
        return len(self._columns[0])

    def take(self, rows: np.ndarray) -> PackedBatch:
        """The inputs of these rows (multi-hot columns as float32)."""
        indices, dense, numeric = (c[rows] for c in self._columns)
        return PackedBatch(indices, dense.astype(np.float32), numeric)

    def numeric_of(self, rows: np.ndarray) -> np.ndarray:
        """The numeric features' matrix at these rows."""
        return self._columns[2][rows]

    def file_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._columns[0].file_rows(rows)

    def at(self, positions: np.ndarray) -> StoredFeatures:
        return StoredFeatures(self.shapes, *(c.at(positions) for c in self._columns))

    def view(self, rows: np.ndarray) -> StoredFeatures:
        """These rows only, in that order, without copying."""
        return self.at(self.file_rows(rows))

    @property
    def packed(self) -> PackedBatch:
        """Every row's inputs in memory, as stored (for small data)."""
        indices, dense, numeric = (np.asarray(c) for c in self._columns)
        return PackedBatch(indices, dense, numeric)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Each feature's columns in memory (for small data), by name."""
        packed = self.packed
        return columns_by_feature(
            self.shapes, packed.indices, packed.dense, packed.numeric
        )


@dataclass(frozen=True)
class RowStore:
    """An opened store: its columns (``labels`` and ``users`` only when
    written)."""

    folder: Path
    ids: IdColumn
    features: StoredFeatures
    labels: RowColumn | None
    users: IdColumn | None

    @property
    def num_rows(self) -> int:
        return len(self.ids)


def open_store(folder: Path) -> RowStore:
    """The store written in ``folder``."""
    layout = json.loads((folder / LAYOUT).read_text(encoding="utf-8"))
    rows = layout["rows"]
    shapes = tuple(FeatureShape(**s) for s in layout["shapes"])

    def mapped(name: str, dtype: object, width: int | None) -> _Mapped:
        shape = (rows,) if width is None else (rows, width)
        return _Mapped(folder / f"{name}.bin", np.dtype(dtype), shape)

    columns = [
        RowColumn(mapped(name, dtype, layout["widths"][name]))
        for name, dtype in _MATRICES.items()
    ]
    ids = IdColumn(mapped("ids", f"S{layout['id_bytes']}", None))
    labels = None
    if layout["label_tasks"] is not None:
        tasks = layout["label_tasks"]
        labels = RowColumn(mapped("labels", np.float32, tasks or None))
    users = None
    if layout["user_bytes"] is not None:
        users = IdColumn(mapped("users", f"S{layout['user_bytes']}", None))
    return RowStore(folder, ids, StoredFeatures(shapes, *columns), labels, users)


class _Strings:
    """Strings of unknown width, appended as UTF-8 with their lengths, then
    rewritten at the longest width."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = name
        self._folder = folder
        self._bytes = (folder / f"{name}.utf8").open("wb")
        self._lengths = (folder / f"{name}.lengths").open("wb")
        self.width = 1

    def add(self, values: np.ndarray) -> None:
        encoded = [v.encode("utf-8") for v in values.tolist()]
        lengths = np.fromiter((len(e) for e in encoded), np.int64, len(encoded))
        if lengths.size:
            self.width = max(self.width, int(lengths.max()))
        self._bytes.write(b"".join(encoded))
        self._lengths.write(lengths.tobytes())

    def close(self) -> None:
        self._bytes.close()
        self._lengths.close()

    def finish(self) -> None:
        """Writes ``NAME.bin`` at the longest width and removes the parts."""
        self.close()
        width = self.width
        with (
            (self._folder / f"{self.name}.lengths").open("rb") as sizes,
            (self._folder / f"{self.name}.utf8").open("rb") as source,
            (self._folder / f"{self.name}.bin").open("wb") as target,
        ):
            while (part := np.frombuffer(sizes.read(_STRING_CHUNK * 8), np.int64)).size:
                text = np.frombuffer(source.read(int(part.sum())), np.uint8)
                fixed = np.zeros((part.size, width), np.uint8)
                ends = np.cumsum(part)
                firsts = ends - part
                column = np.arange(text.size) - np.repeat(firsts, part)
                fixed[np.repeat(np.arange(part.size), part), column] = text
                target.write(fixed.tobytes())
        (self._folder / f"{self.name}.utf8").unlink()
        (self._folder / f"{self.name}.lengths").unlink()


class RowStoreWriter:
    """Writes a store chunk by chunk into a folder of its own next to
    ``folder`` and puts it in place of ``folder`` when finished (a party
    started again rewrites its store; a store cut short never replaces one)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(
            tempfile.mkdtemp(prefix=f".{self.folder.name}.", dir=self.folder.parent)
        )
        self._files = {
            name: (self._staging / f"{name}.bin").open("wb") for name in _MATRICES
        }
        self._widths: dict[str, int] = {}
        self._ids = _Strings(self._staging, "ids")
        self._users: _Strings | None = None
        self._labels = None
        self._label_tasks: int | None = None
        self._shapes: tuple[FeatureShape, ...] | None = None
        self._rows = 0

    def add(
        self,
        ids: np.ndarray,
        shapes: tuple[FeatureShape, ...],
        packed: PackedBatch,
        labels: np.ndarray | None = None,
        users: np.ndarray | None = None,
    ) -> None:
        """Appends a chunk's rows: IDs, encoded inputs (multi-hot as bytes),
        labels (``[rows]`` or ``[rows, tasks]``) and users when the party has
        them."""
        try:
            self._add(ids, shapes, packed, labels, users)
        except OSError as exc:
            raise storage_error(self.folder, exc) from None

    def _add(
        self,
        ids: np.ndarray,
        shapes: tuple[FeatureShape, ...],
        packed: PackedBatch,
        labels: np.ndarray | None,
        users: np.ndarray | None,
    ) -> None:
        if self._shapes is None:
            self._shapes = shapes
            if labels is not None:
                self._labels = (self._staging / "labels.bin").open("wb")
                self._label_tasks = labels.shape[1] if labels.ndim > 1 else 0
            if users is not None:
                self._users = _Strings(self._staging, "users")
        for name in _MATRICES:
            matrix = np.ascontiguousarray(getattr(packed, name), _MATRICES[name])
            self._widths[name] = matrix.shape[1]
            self._files[name].write(matrix.tobytes())
        self._ids.add(ids)
        if self._labels is not None and labels is not None:
            self._labels.write(np.ascontiguousarray(labels, np.float32).tobytes())
        if self._users is not None and users is not None:
            self._users.add(users)
        self._rows += len(ids)

    def finish(self) -> RowStore:
        """Closes the files, puts the store in place and opens it."""
        try:
            return self._finish()
        except OSError as exc:
            raise storage_error(self.folder, exc) from None

    def _finish(self) -> RowStore:
        for handle in self._files.values():
            handle.close()
        if self._labels is not None:
            self._labels.close()
        self._ids.finish()
        if self._users is not None:
            self._users.finish()
        layout = {
            "rows": self._rows,
            "shapes": [dataclasses.asdict(s) for s in self._shapes or ()],
            "widths": {n: self._widths.get(n, 0) for n in _MATRICES},
            "id_bytes": self._ids.width,
            "label_tasks": self._label_tasks,
            "user_bytes": self._users.width if self._users is not None else None,
        }
        (self._staging / LAYOUT).write_text(json.dumps(layout), encoding="utf-8")
        if self.folder.exists():
            shutil.rmtree(self.folder)
        os.replace(self._staging, self.folder)
        return open_store(self.folder)

    def abandon(self) -> None:
        """Removes what was written (the store in place, if any, stays)."""
        for handle in self._files.values():
            handle.close()
        if self._labels is not None:
            self._labels.close()
        for strings in (self._ids, self._users):
            if strings is not None:
                strings.close()
        shutil.rmtree(self._staging, ignore_errors=True)


# A party's stores, in its output_dir (no job is named with a leading dot).
STORES = ".rows"


def party_stores(output_dir: Path) -> Path:
    """The folder of a party's stores; a party server empties it when it starts
    (it holds the output_dir's lock: no other process reads them)."""
    return Path(output_dir) / STORES


def remove_stores(output_dir: Path) -> None:
    """Removes every store a party wrote before (its table's, its datasets',
    and any a crash cut short)."""
    shutil.rmtree(party_stores(output_dir), ignore_errors=True)


def temporary_store_folder() -> tuple[Path, Path]:
    """A folder for a store in a temporary folder of its own: the store's
    folder and the temporary one, to remove with its owner
    (``attach_cleanup``)."""
    root = Path(tempfile.mkdtemp(prefix="splitrec-rows-"))
    return root / "rows", root


def attach_cleanup(owner: object, root: Path) -> None:
    """Removes ``root`` once ``owner`` is garbage (or at exit)."""
    weakref.finalize(owner, shutil.rmtree, str(root), True)
