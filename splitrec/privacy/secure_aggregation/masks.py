"""Pairwise masks that cancel in the sum over the feature parties.

Each pair of feature parties shares a 32-byte key (``pair_key``). For a step,
the pair's mask is the ChaCha20 key stream under that key, read as uint64,
with a nonce built from the step's context (phase, epoch, step, split), so a
replayed step draws the same mask and no two passes share one. Of a pair, the
party whose name sorts first adds the mask and the other subtracts it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"splitrec secure aggregation pair key v1"


@dataclass(frozen=True)
class MaskContext:
    """Where a tensor belongs: one mask per (phase, epoch, step, split)."""

    phase: int
    epoch: int
    step: int
    split: int = 0

    def nonce(self) -> bytes:
        # ChaCha20 here takes 16 bytes: a 32-bit block counter (starting at 0)
        # followed by the 96-bit nonce.
        return struct.pack("<IIIHH", 0, self.epoch, self.step, self.phase, self.split)


def pair_key(
    job_id: str,
    own: tuple[str, X25519PrivateKey],
    peer: tuple[str, bytes],
) -> bytes:
    """The key ``own`` shares with ``peer`` (party name, public key) in a job;
    both sides derive the same one."""
    name, secret = own
    peer_name, peer_public = peer
    shared = secret.exchange(X25519PublicKey.from_public_bytes(peer_public))
    mine = secret.public_key().public_bytes_raw()
    ends = sorted([(name, mine), (peer_name, peer_public)])
    salt = hashlib.sha256(
        b"\0".join([job_id.encode(), *(n.encode() + b"=" + k for n, k in ends)])
    ).digest()
    return HKDF(hashes.SHA256(), 32, salt, _INFO).derive(shared)


def mask(key: bytes, context: MaskContext, count: int) -> np.ndarray:
    """``count`` uint64 values of the pair's key stream for ``context``."""
    stream = Cipher(algorithms.ChaCha20(key, context.nonce()), mode=None).encryptor()
    return np.frombuffer(stream.update(bytes(8 * count)), dtype="<u8").copy()


class Masker:
    """One feature party's masks: the sum of its pairs' masks, each with the
    sign its place in the pair gives it."""

    def __init__(self, party: str, keys: Mapping[str, bytes]) -> None:
        """``keys``: the pair key shared with every other feature party."""
        self.party = party
        self._keys = dict(keys)

    def apply(self, values: np.ndarray, context: MaskContext) -> np.ndarray:
        """``values`` (uint64) plus this party's masks, modulo 2^64."""
        masked = np.array(values, dtype=np.uint64, copy=True)
        flat = masked.reshape(-1)
        for peer, key in sorted(self._keys.items()):
            drawn = mask(key, context, flat.size)
            if self.party < peer:
                np.add(flat, drawn, out=flat)
            else:
                np.subtract(flat, drawn, out=flat)
        return masked
