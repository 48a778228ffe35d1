"""The common order of aligned rows: by ID, checked a chunk at a time."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.party_server.alignment import in_id_order, order_by_id
from splitrec.party_server.data_slice import DataSlice, id_digest
from splitrec.party_server.row_store import IdColumn


def _slice(ids: list[str]) -> DataSlice:
    values = np.array(ids)
    return DataSlice(IdColumn.of(values), None, None, id_digest(values))


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_rows_in_id_order_pass_and_any_other_order_fails(chunk):
    rng = np.random.default_rng(3)
    data = _slice([f"u{v}" for v in rng.choice(10_000, 200, replace=False)])
    rows = rng.choice(200, 60, replace=False)
    ordered = order_by_id(data, rows)

    assert in_id_order(data, ordered, chunk)
    assert in_id_order(data, ordered[:1], chunk)
    assert in_id_order(data, ordered[:0], chunk)
    for a, b in ((0, 1), (10, 11), (58, 59), (0, 59)):
        swapped = ordered.copy()
        swapped[[a, b]] = swapped[[b, a]]
        assert not in_id_order(data, swapped, chunk), (a, b)


def test_a_row_given_twice_is_not_in_order():
    data = _slice(["a", "b", "c"])

    assert not in_id_order(data, np.array([0, 1, 1, 2]), chunk=2)


@pytest.mark.parametrize(("in_memory", "seed"), [(7, 0), (50, 1), (199, 2), (59, 3)])
def test_many_rows_sorted_through_files_give_the_in_memory_order(
    tmp_path, in_memory, seed
):
    rng = np.random.default_rng(seed)
    # IDs of one length and of many, close together and far apart.
    values = [f"{v:06d}" for v in rng.choice(10**6, 150, replace=False)]
    values += [f"x{v}" for v in rng.choice(10**3, 50, replace=False)]
    data = _slice(values)
    rows = rng.permutation(200)[:180].astype(np.int32)

    ordered = order_by_id(data, rows, tmp_path, in_memory=in_memory)

    np.testing.assert_array_equal(ordered, order_by_id(data, rows))
    assert ordered.dtype == np.int32
    assert list(tmp_path.iterdir()) == []  # the bucket files are gone
