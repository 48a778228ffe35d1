"""The label party's cache of feature outputs: bounded, expiring, per party."""

from __future__ import annotations

import numpy as np

from splitrec.party_server.output_cache import OutputCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _rows(*values: float) -> np.ndarray:
    return np.array([[v, v] for v in values], np.float32)


def test_outputs_are_kept_per_party_and_version():
    cache = OutputCache(10, 60)
    cache.put("alice", "v1", ["1", "2"], _rows(1, 2))
    found = cache.get("alice", "v1", ["2", "3"])
    assert list(found) == ["2"] and found["2"].tolist() == [2, 2]
    assert cache.get("alice", "v2", ["1"]) == {}
    assert cache.get("carol", "v1", ["1"]) == {}


def test_the_least_recently_used_go_first_when_full():
    cache = OutputCache(2, 60)
    cache.put("alice", "v1", ["1", "2"], _rows(1, 2))
    cache.get("alice", "v1", ["1"])
    cache.put("alice", "v1", ["3"], _rows(3))
    assert set(cache.get("alice", "v1", ["1", "2", "3"])) == {"1", "3"}
    assert len(cache) == 2


def test_entries_expire_and_a_party_can_be_dropped():
    clock = Clock()
    cache = OutputCache(10, 5, clock)
    cache.put("alice", "v1", ["1"], _rows(1))
    cache.put("carol", "v1", ["1"], _rows(9))
    clock.now = 4.0
    assert "1" in cache.get("alice", "v1", ["1"])
    cache.drop("carol")
    assert cache.get("carol", "v1", ["1"]) == {}
    clock.now = 5.5
    assert cache.get("alice", "v1", ["1"]) == {}
    assert len(cache) == 0


def test_a_cache_of_no_entries_keeps_nothing():
    cache = OutputCache(0, 60)
    cache.put("alice", "v1", ["1"], _rows(1))
    assert cache.get("alice", "v1", ["1"]) == {} and len(cache) == 0
