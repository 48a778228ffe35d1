"""ECDH-PSI arithmetic: blinding commutes, and matching finds exactly the overlap."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from splitrec.privacy import psi


@pytest.fixture(scope="module")
def blinders():
    with psi.Blinder(psi.new_key(), workers=2) as a, psi.Blinder(psi.new_key(), 2) as b:
        yield a, b


def _blind(blinder, points: bytes, width: int = psi.POINT_BYTES) -> bytes:
    return b"".join(blinder.blind_chunks([points], width))


def _hash_and_blind(blinder, ids: list[str]) -> bytes:
    return b"".join(blinder.hash_and_blind_chunks(ids))


def _intersect(blinders, ours: list[str], theirs: list[str]) -> list[str]:
    """Both directions of the protocol; returns our IDs found in theirs."""
    a, b = blinders
    ours_double = _blind(b, _hash_and_blind(a, ours), psi.MATCH_BYTES)
    theirs_double = _blind(a, _hash_and_blind(b, theirs), psi.MATCH_BYTES)
    width = f"S{psi.MATCH_BYTES}"
    found = np.isin(
        np.frombuffer(ours_double, width), np.frombuffer(theirs_double, width)
    )
    return [ours[i] for i in np.flatnonzero(found)]


def test_blinding_commutes(blinders):
    a, b = blinders
    points = psi.hash_to_points(["x", "y"])
    assert _blind(b, _blind(a, points)) == _blind(a, _blind(b, points))
    assert _blind(a, points) != _blind(b, points)


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        (["1", "2", "3", "4"], ["3", "4", "5"], ["3", "4"]),  # overlapping
        (["1", "2", "3"], ["3", "2", "1"], ["1", "2", "3"]),  # identical, reordered
        (["1", "2"], ["3", "4"], []),  # disjoint
        (["a", "b", "c"], ["z", "c", "y"], ["c"]),  # one element
        (["10", "01", "1"], ["1", "010"], ["1"]),  # IDs are text, not numbers
    ],
)
def test_matches_are_exactly_the_common_ids(blinders, ours, theirs, expected):
    assert _intersect(blinders, ours, theirs) == expected


def test_many_ids_across_worker_chunks(blinders):
    ours = [f"id-{i}" for i in range(0, 50_000, 2)]
    theirs = [f"id-{i}" for i in range(0, 50_000, 3)]
    assert _intersect(blinders, ours, theirs) == [
        f"id-{i}" for i in range(0, 50_000, 6)
    ]


def test_points_are_domain_separated_hashes():
    points = psi.hash_to_points(["alice"])
    assert len(points) == psi.POINT_BYTES
    assert points != hashlib.sha256(b"alice").digest()


def test_values_that_are_not_whole_points_are_refused(blinders):
    with pytest.raises(ValueError, match="not a whole number of 32-byte points"):
        _blind(blinders[0], b"\x01" * 33)


def test_fresh_keys_differ():
    assert psi.new_key() != psi.new_key()
    assert isinstance(np.frombuffer(psi.new_key(), np.uint8), np.ndarray)
