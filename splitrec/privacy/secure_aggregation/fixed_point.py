"""Hidden tensors as fixed-point integers modulo 2^64, and their sum back.

A value x travels as round(x * 2^SCALE_BITS) in two's complement modulo 2^64.
The sum of n such values is exact as long as every |x| stays below
``limit(n)``: 2^(63 - SCALE_BITS) / n. With SCALE_BITS = 32 the resolution is
2^-32 (about 2.3e-10) per party, finer than float32 for every |x| above
about 0.002, and the range is ±2^31 / n.
"""

from __future__ import annotations

import numpy as np

from splitrec.common.errors import DataError

SCALE_BITS = 32
_SCALE = float(2**SCALE_BITS)


def limit(parties: int) -> float:
    """The largest |value| each of ``parties`` summands may have."""
    return float(2 ** (63 - SCALE_BITS)) / max(1, parties)


def resolution(parties: int) -> float:
    """The most a decoded sum of ``parties`` summands can differ from the
    exact sum of their float values (half a unit of rounding each)."""
    return parties * 0.5 / _SCALE


def encode(values: np.ndarray, parties: int, what: str) -> np.ndarray:
    """``values`` (float) in fixed point as uint64; refused when a value is not
    finite or too large for a sum over ``parties``."""
    values = np.asarray(values, np.float64)
    bound = limit(parties)
    if not np.isfinite(values).all() or (np.abs(values) >= bound).any():
        worst = float(np.nanmax(np.abs(np.where(np.isfinite(values), values, np.inf))))
        raise DataError(
            f"{what}: a value of magnitude {worst:g} cannot be summed securely over "
            f"{parties} feature parties (the fixed-point range is ±{bound:g}); clip "
            "the base output (privacy.embedding_dp.clip_norm) or lower the "
            "embedding noise"
        )
    return np.rint(values * _SCALE).astype(np.int64).view(np.uint64)


def add(arrays: list[np.ndarray]) -> np.ndarray:
    """The sum of uint64 arrays modulo 2^64."""
    total = np.zeros_like(arrays[0], dtype=np.uint64)
    for array in arrays:
        np.add(total, array, out=total)
    return total


def decode(total: np.ndarray) -> np.ndarray:
    """A fixed-point sum (uint64) back to float32."""
    return (total.view(np.int64).astype(np.float64) / _SCALE).astype(np.float32)
