"""ECDH-PSI arithmetic on Curve25519: hash IDs to points, and blind them.

Each party hashes its IDs to curve points (their Montgomery u-coordinates) and
multiplies them by a secret scalar of its own (X25519). Scalar multiplication
commutes, so an ID both parties hold ends up as the same doubly blinded value
whichever party blinded first; without the keys nothing can be learned from a
blinded value. Keys are fresh per job and never leave the party (its process,
or the workers of its own engine).

Values travel as chunks of ``bytes`` of fixed-width values, a chunk at a time;
the work is spread over an engine's workers (X25519 costs tens of microseconds
per value): the party's Ray engine for a large table, else a process pool.
Matching doubly blinded values is ``party_server.psi_spool``'s.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from splitrec.engine.ordered import Engine
from splitrec.engine.pool import ProcessPool

POINT_BYTES = 32
# Doubly blinded values are only compared, never blinded again: 16 bytes keep
# the chance of a false match below 2^-88 for a billion pairs.
MATCH_BYTES = 16
_DOMAIN = b"splitrec-psi-v1\x00"
_CHUNK = 20_000


def new_key() -> bytes:
    """A fresh secret scalar (raw X25519 private key bytes)."""
    return os.urandom(POINT_BYTES)


def hash_to_points(ids: Sequence[str]) -> bytes:
    """Each ID's SHA-256 (domain separated) as a curve u-coordinate, concatenated."""
    return b"".join(hashlib.sha256(_DOMAIN + i.encode("utf-8")).digest() for i in ids)


def _blind_chunk(key: bytes, width: int, points: bytes) -> bytes:
    private = X25519PrivateKey.from_private_bytes(key)
    out = bytearray()
    for start in range(0, len(points), POINT_BYTES):
        point = X25519PublicKey.from_public_bytes(points[start : start + POINT_BYTES])
        out += private.exchange(point)[:width]
    return bytes(out)


def _hash_and_blind_chunk(key: bytes, ids: list[str]) -> bytes:
    return _blind_chunk(key, POINT_BYTES, hash_to_points(ids))


class Blinder:
    """Blinds values with one secret key, on an engine's workers: the one
    given (a party's Ray engine), or else a process pool of its own, one
    worker per core (``workers``). Use as a context manager."""

    def __init__(
        self, key: bytes, workers: int | None = None, engine: Engine | None = None
    ) -> None:
        self._key = key
        self._given = engine
        self._pool = None if engine is not None else ProcessPool(workers)
        self._engine: Engine | None = None

    def __enter__(self) -> Blinder:
        self._engine = self._given if self._pool is None else self._pool.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.__exit__(*exc)
        self._engine = None

    def hash_and_blind_chunks(self, ids: Sequence[str]) -> Iterator[bytes]:
        """``H(id)^key`` for each ID, 32 bytes each, a chunk at a time, in
        order. ``ids`` is read a chunk at a time (a stored ID column is never
        whole in memory)."""
        chunks = (list(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK))
        return self._running.map_ordered(_hash_and_blind_chunk, chunks, self._key)

    def blind_chunks(
        self, chunks: Iterable[bytes], width: int = POINT_BYTES
    ) -> Iterator[bytes]:
        """Each 32-byte value of each chunk blinded again and cut to ``width``
        bytes, chunk by chunk, in order, as they come. Raises ``ValueError``
        for a chunk that is not whole points or a value that is not a usable
        curve point."""
        whole = (_whole(c) for c in chunks)
        return self._running.map_ordered(_blind_chunk, whole, self._key, width)

    @property
    def _running(self) -> Engine:
        assert self._engine is not None, "use Blinder as a context manager"
        return self._engine


def _whole(points: bytes) -> bytes:
    if len(points) % POINT_BYTES:
        raise ValueError(
            f"{len(points)} bytes is not a whole number of {POINT_BYTES}-byte points"
        )
    return points
