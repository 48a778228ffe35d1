"""splitrec.party_server.psi_spool: PSI's values kept on disk, matched by bucket."""

from __future__ import annotations

import os

import numpy as np
import pytest

from splitrec.party_server.psi_spool import (
    Buckets,
    ValueFile,
    bucket_count,
    holds_all,
    locate,
    matches,
    remove_spool_leftovers,
)

WIDTH = 16


def _values(numbers) -> bytes:
    """16-byte values that look random (as blinded ones do), one per number."""
    rng = np.random.default_rng(0)
    table = rng.integers(0, 256, (1000, WIDTH), dtype=np.uint8)
    return table[np.asarray(numbers)].tobytes()


def _bucketed(tmp_path, name, numbers, count, chunk=7) -> Buckets:
    buckets = Buckets(tmp_path, name, WIDTH, count)
    raw = _values(numbers)
    for start in range(0, len(raw), chunk * WIDTH):
        buckets.add(raw[start : start + chunk * WIDTH])
    return buckets


@pytest.mark.parametrize("count", [1, 3, 17])
def test_matches_and_locate_work_across_buckets_and_chunks(tmp_path, count):
    mine = [5, 9, 1, 400, 77, 3, 12]
    theirs = [12, 1, 600, 77, 8]
    wanted = [77, 1, 12, 999]

    own = _bucketed(tmp_path, "own", mine, count)
    other = _bucketed(tmp_path, "other", theirs, count)
    asked = _bucketed(tmp_path, "asked", wanted, count, chunk=2)

    np.testing.assert_array_equal(matches(own, other), [2, 4, 6])
    np.testing.assert_array_equal(locate(own, asked), [4, 2, 6, -1])
    assert locate(own, asked).dtype == np.int32
    assert not holds_all(own, asked)  # 999 is not mine
    inside = _bucketed(tmp_path, "inside", [77, 1, 12], count, chunk=2)
    assert holds_all(own, inside)


def test_sets_bucketed_otherwise_are_refused(tmp_path):
    with pytest.raises(ValueError, match="bucketed alike"):
        matches(_bucketed(tmp_path, "a", [1], 2), _bucketed(tmp_path, "b", [1], 3))


def test_a_value_file_reads_back_after_its_folder_is_gone(tmp_path):
    spool = ValueFile(tmp_path / "values", WIDTH)
    spool.append(_values(range(10)))
    spool.append(_values(range(10, 25)))
    spool.close()
    os.unlink(tmp_path / "values")

    assert b"".join(spool.chunks(4)) == _values(range(25))
    assert spool.take(np.array([20, 3])) == _values([20, 3])
    assert spool.take(np.zeros(0, np.int64)) == b""
    spool.release()


def test_bucket_counts_grow_with_the_values_up_to_a_limit():
    assert bucket_count(0) == bucket_count(1) == 1
    assert bucket_count(10_000_000) == 40
    assert bucket_count(10**12) == 256


def test_folders_a_crash_left_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "job-a" / ".psi-x1").mkdir(parents=True)
    (tmp_path / "job-a" / ".psi-x1" / "own-blinded").write_bytes(b"v" * 32)
    (tmp_path / "job-a" / "alignment.npz").write_bytes(b"kept")
    (tmp_path / "job-b").mkdir()

    removed = remove_spool_leftovers(tmp_path)

    assert removed == [tmp_path / "job-a" / ".psi-x1"]
    assert sorted(p.name for p in (tmp_path / "job-a").iterdir()) == ["alignment.npz"]
