"""Repeated IDs found through hashed buckets on disk, as a plain scan finds them."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.party_server import id_checks, psi_spool
from splitrec.party_server.row_store import IdColumn


def _plain_first_repeat(ids: list[str]) -> list[int] | None:
    seen: dict[str, list[int]] = {}
    for row, value in enumerate(ids):
        seen.setdefault(value, []).append(row)
    repeated = [rows for rows in seen.values() if len(rows) > 1]
    return min(repeated, key=lambda rows: rows[0]) if repeated else None


@pytest.fixture(autouse=True)
def _small_buckets(monkeypatch):
    # Many buckets for a few thousand IDs, and chunks that cut through them.
    monkeypatch.setattr(psi_spool, "_BUCKET_VALUES", 100)
    monkeypatch.setattr(id_checks, "_CHUNK", 777)
    monkeypatch.setattr(id_checks, "_IN_MEMORY", 3)


@pytest.mark.parametrize("seed", range(6))
def test_the_first_repeat_is_the_plain_scan_s(tmp_path, seed):
    rng = np.random.default_rng(seed)
    ids = [f"id-{v}" for v in rng.choice(10**6, 5000, replace=False)]
    for _ in range(seed):  # seed 0: no repeat at all
        source, target = rng.choice(len(ids), 2, replace=False)
        ids[target] = ids[source]

    found = id_checks.first_repeat(IdColumn.of(np.array(ids)), tmp_path)

    expected = _plain_first_repeat(ids)
    assert (found.tolist() if found is not None else None) == expected
    assert list(tmp_path.iterdir()) == []  # the bucket files are gone


def test_an_id_held_three_times_is_named_at_every_row(tmp_path):
    ids = ["b", "a", "ccc", "a", "d", "a", "ccc"]

    found = id_checks.first_repeat(IdColumn.of(np.array(ids)), tmp_path)

    assert found.tolist() == [1, 3, 5]


@pytest.mark.parametrize("in_memory", [3, 10_000])
def test_few_ids_are_checked_in_memory_alike(tmp_path, monkeypatch, in_memory):
    monkeypatch.setattr(id_checks, "_IN_MEMORY", in_memory)
    ids = IdColumn.of(np.array(["q", "r", "s", "r", "q"]))

    assert id_checks.first_repeat(ids, tmp_path).tolist() == [0, 4]


def test_ids_that_differ_only_in_length_are_not_repeats(tmp_path):
    ids = ["7", "77", "777", "7 ", "", "x"]

    assert id_checks.first_repeat(IdColumn.of(np.array(ids)), tmp_path) is None
