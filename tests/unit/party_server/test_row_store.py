"""splitrec.party_server.row_store: a party's encoded rows on disk."""

from __future__ import annotations

import errno
import gc

import numpy as np
import pytest

from splitrec.common.errors import DiskFullError
from splitrec.models.features import FeatureShape, PackedBatch
from splitrec.party_server import row_store
from splitrec.party_server.row_store import (
    IdColumn,
    RowStoreWriter,
    attach_cleanup,
    open_store,
    temporary_store_folder,
    zero_labels,
)

SHAPES = (FeatureShape("a", "index", 10), FeatureShape("g", "multi_hot", 3))


def _chunk(start: int, rows: int) -> tuple[np.ndarray, PackedBatch, np.ndarray]:
    numbers = np.arange(start, start + rows)
    ids = np.array([f"id-{'x' * (n % 5)}{n}" for n in numbers])
    packed = PackedBatch(
        numbers[:, None].astype(np.int32),
        (numbers[:, None] % np.array([2, 3, 5]) == 0).astype(np.uint8),
        np.zeros((rows, 0), np.float32),
    )
    return ids, packed, (numbers % 2).astype(np.float32)


def _write(folder, chunks=((0, 4), (4, 1), (5, 6)), users=False):
    writer = RowStoreWriter(folder)
    for start, rows in chunks:
        ids, packed, labels = _chunk(start, rows)
        writer.add(ids, SHAPES, packed, labels, ids if users else None)
    return writer.finish()


def test_chunks_of_ids_of_every_width_read_back_in_order(tmp_path):
    store = _write(tmp_path / "rows", users=True)

    expected = np.concatenate([_chunk(0, 4)[0], _chunk(4, 1)[0], _chunk(5, 6)[0]])
    assert store.num_rows == 11
    assert store.ids.tolist() == expected.tolist()
    assert store.users.tolist() == expected.tolist()
    np.testing.assert_array_equal(store.labels[np.arange(11)], np.arange(11) % 2)
    batch = store.features.take(np.array([7, 0, 7]))
    np.testing.assert_array_equal(batch.indices[:, 0], [7, 0, 7])
    assert batch.dense.dtype == np.float32
    np.testing.assert_array_equal(batch.dense[1], [1, 1, 1])


def test_a_view_composes_positions_without_copying(tmp_path):
    store = _write(tmp_path / "rows")

    view = store.features.view(np.array([9, 3, 5, 1]))
    inner = view.view(np.array([2, 0]))

    np.testing.assert_array_equal(inner.take(np.array([1, 0])).indices[:, 0], [9, 5])
    ids = store.ids.view(np.array([9, 3]))
    assert ids.tolist() == [store.ids.tolist()[9], store.ids.tolist()[3]]
    assert len(ids) == 2


def test_ids_order_as_python_orders_their_strings():
    values = np.array(["b", "é", "a10", "a9", "Z", "ab"])
    ids = IdColumn.of(values)

    order = ids.order(np.arange(values.size))

    assert values[order].tolist() == sorted(values.tolist())
    assert ids[np.array([1])].tolist() == ["é"]


def test_a_store_cut_short_leaves_the_one_in_place(tmp_path):
    first = _write(tmp_path / "rows")
    writer = RowStoreWriter(tmp_path / "rows")
    writer.add(*_chunk(0, 2)[:1], SHAPES, _chunk(0, 2)[1], _chunk(0, 2)[2])

    writer.abandon()

    again = open_store(tmp_path / "rows")
    assert again.num_rows == first.num_rows == 11
    assert [p.name for p in tmp_path.iterdir()] == ["rows"]


def test_zero_labels_take_no_memory_per_row():
    labels = zero_labels(10**9, 2)

    assert labels.shape == (10**9, 2)
    np.testing.assert_array_equal(labels[np.array([5, 10**9 - 1])], np.zeros((2, 2)))


def test_a_temporary_store_goes_with_its_owner(tmp_path):
    folder, root = temporary_store_folder()
    store = _write(folder)
    attach_cleanup(store, root)
    assert folder.exists()

    del store
    gc.collect()

    assert not root.exists()


def test_a_full_disk_is_named_with_the_store(tmp_path, monkeypatch):
    writer = RowStoreWriter(tmp_path / "rows")

    def full(self, values):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(row_store._Strings, "add", full)
    with pytest.raises(DiskFullError, match=f"cannot write {tmp_path / 'rows'}"):
        writer.add(*_chunk(0, 2)[:1], SHAPES, _chunk(0, 2)[1])
    writer.abandon()

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("pread_rows", [2, 10**6])
def test_a_file_too_large_to_map_reads_the_same_rows(tmp_path, monkeypatch, pread_rows):
    # Prepare: files read with pread (none mapped), many rows gathered in
    # order (a chunk scan) or a few a row at a time.
    mapped = _write(tmp_path / "mapped", users=True)
    monkeypatch.setattr(row_store, "_MAPPED_BYTES", 0)
    monkeypatch.setattr(row_store, "_PREAD_ROWS", pread_rows)
    monkeypatch.setattr(row_store, "_CHUNK", 4)
    read = open_store(tmp_path / "mapped")
    rows = np.array([10, 0, 7, 7, 3, 9])

    for name in ("indices", "dense"):
        mine, theirs = (getattr(s.features.take(rows), name) for s in (read, mapped))
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(read.labels[rows], mapped.labels[rows])
    assert read.ids.tolist() == mapped.ids.tolist()
    assert read.users[rows].tolist() == mapped.users[rows].tolist()
    np.testing.assert_array_equal(read.ids.order(rows), mapped.ids.order(rows))
