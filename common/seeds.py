"""Stable seeds derived from the job seed and names, identical in every process."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *names: object) -> int:
    """A 31-bit seed from a job seed and a path of names (party, layer, ...)."""
    text = "/".join([str(seed), *(str(n) for n in names)])
    return (
        int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        & 0x7FFFFFFF
    )
