"""ECDH-PSI arithmetic on Curve25519: hash IDs to points, and blind them.

Each party hashes its IDs to curve points (their Montgomery u-coordinates) and
multiplies them by a secret scalar of its own (X25519). Scalar multiplication
commutes, so an ID both parties hold ends up as the same doubly blinded value
whichever party blinded first; without the keys nothing can be learned from a
blinded value. Keys are fresh per job and never leave the process.

Values travel as chunks of ``bytes`` of fixed-width values, a chunk at a time;
the work is spread over worker processes (X25519 costs tens of microseconds per
value). Matching doubly blinded values is ``party_server.psi_spool``'s.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from splitrec.common.lifetime import exit_with_parent

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


def _blind_chunk(key: bytes, points: bytes, width: int) -> bytes:
    private = X25519PrivateKey.from_private_bytes(key)
    out = bytearray()
    for start in range(0, len(points), POINT_BYTES):
        point = X25519PublicKey.from_public_bytes(points[start : start + POINT_BYTES])
        out += private.exchange(point)[:width]
    return bytes(out)


def _hash_and_blind_chunk(key: bytes, ids: list[str]) -> bytes:
    return _blind_chunk(key, hash_to_points(ids), POINT_BYTES)


class Blinder:
    """Blinds values with one secret key, on all cores.

    Use as a context manager; the worker processes start fresh (spawn), so a
    caller with running threads (gRPC, TensorFlow) is safe. They leave on their
    own when this process dies, even by SIGKILL.
    """

    def __init__(self, key: bytes, workers: int | None = None) -> None:
        self._key = key
        self._workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Blinder:
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            self._workers,
            mp_context=context,
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def hash_and_blind_chunks(self, ids: Sequence[str]) -> Iterator[bytes]:
        """``H(id)^key`` for each ID, 32 bytes each, a chunk at a time, in
        order. ``ids`` is read a chunk at a time (a stored ID column is never
        whole in memory)."""
        chunks = (list(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK))
        return self._stream(_hash_and_blind_chunk, chunks)

    def blind_chunks(
        self, chunks: Iterable[bytes], width: int = POINT_BYTES
    ) -> Iterator[bytes]:
        """Each 32-byte value of each chunk blinded again and cut to ``width``
        bytes, chunk by chunk, in order, as they come. Raises ``ValueError``
        for a chunk that is not whole points or a value that is not a usable
        curve point."""
        return self._stream(_blind_chunk, (_whole(c) for c in chunks), width)

    def _stream(
        self, function: object, chunks: Iterator[object], *extra: object
    ) -> Iterator[bytes]:
        """``function`` of each chunk on the workers, yielded in order, with at
        most two chunks per worker taken from ``chunks`` at a time."""
        assert self._pool is not None, "use Blinder as a context manager"
        pending: deque[Future] = deque()
        try:
            for chunk in chunks:
                pending.append(self._pool.submit(function, self._key, chunk, *extra))
                if len(pending) >= 2 * self._workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _whole(points: bytes) -> bytes:
    if len(points) % POINT_BYTES:
        raise ValueError(
            f"{len(points)} bytes is not a whole number of {POINT_BYTES}-byte points"
        )
    return points
