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


def _intersect(blinders, ours: list[str], theirs: list[str]) -> list[str]:
    """Both directions of the protocol; returns our IDs found in theirs."""
    a, b = blinders
    ours_double = b.blind(a.hash_and_blind(ours), psi.MATCH_BYTES)
    theirs_double = a.blind(b.hash_and_blind(theirs), psi.MATCH_BYTES)
    found = psi.matches(
        psi.as_rows(ours_double, psi.MATCH_BYTES),
        psi.as_rows(theirs_double, psi.MATCH_BYTES),
    )
    return [ours[i] for i in found]


def test_blinding_commutes(blinders):
    a, b = blinders
    points = psi.hash_to_points(["x", "y"])
    assert b.blind(a.blind(points)) == a.blind(b.blind(points))
    assert a.blind(points) != b.blind(points)


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
        blinders[0].blind(b"\x01" * 33)
    with pytest.raises(ValueError, match="not a whole number of 16-byte values"):
        psi.as_rows(b"\x00" * 17, 16)


def test_fresh_keys_differ():
    assert psi.new_key() != psi.new_key()
    assert isinstance(np.frombuffer(psi.new_key(), np.uint8), np.ndarray)
