"""Compressors for the hidden tensors and gradients that cross between parties.

A feature party compresses each hidden tensor ``[batch, width]`` it sends; the
label party decompresses it and, for the sparsifiers, returns the gradient only
at the positions the forward kept (the same mask), so the backward message
carries values and no positions.

Methods:

- ``fp16``: half-precision values (2 bytes each);
- ``int8``: 8-bit zero-point quantization per tensor (scale and zero point
  travel with the values);
- ``topk``: the ``ratio`` largest magnitudes, with their flat positions;
- ``random``: a ``ratio`` of the positions drawn from a seed both sides know
  (the job seed and the step), values scaled by ``1 / ratio`` so that the
  tensor is unbiased; no positions travel;
- ``topk_int8``: top-k, then the kept values quantized to 8 bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METHODS = ("none", "fp16", "int8", "topk", "random", "topk_int8")
SPARSE = ("topk", "random", "topk_int8")


@dataclass(frozen=True)
class Compressed:
    """One compressed tensor: what the wire format carries."""

    shape: tuple[int, ...]
    values: np.ndarray
    positions: np.ndarray | None = None
    scale: float = 1.0
    zero_point: float = 0.0

    @property
    def nbytes(self) -> int:
        extra = self.positions.nbytes if self.positions is not None else 0
        return int(self.values.nbytes + extra)


def quantize(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """8-bit zero-point quantization: ``value ≈ (q - zero_point) * scale``."""
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    scale = (high - low) / 255.0 if high > low else 1.0
    zero_point = -low / scale
    q = np.clip(np.rint(values / scale + zero_point), 0, 255).astype(np.uint8)
    return q, scale, zero_point


def dequantize(q: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(
        np.float32
    )


def kept_count(size: int, ratio: float) -> int:
    """How many of ``size`` values a sparsifier keeps (at least one)."""
    return max(1, min(size, math.ceil(size * ratio))) if size else 0


def random_positions(size: int, ratio: float, seed: int, step_key: tuple) -> np.ndarray:
    """The positions ``random`` keeps: the same at both parties for one step."""
    rng = np.random.default_rng([seed, *step_key])
    chosen = rng.choice(size, kept_count(size, ratio), replace=False)
    return np.sort(chosen).astype(np.uint32)


@dataclass(frozen=True)
class Compressor:
    """One job's compression method; ``step_key`` identifies a step's tensor."""

    method: str = "none"
    ratio: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"unknown compression {self.method!r}; use one of {METHODS}"
            )
        if self.method in SPARSE and not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"compression ratio must lie in (0, 1], got {self.ratio}")

    @property
    def sparse(self) -> bool:
        return self.method in SPARSE

    def positions(self, hidden: np.ndarray, step_key: tuple) -> np.ndarray | None:
        """The flat positions a sparsifier keeps for this tensor."""
        flat = hidden.reshape(-1)
        if self.method == "random":
            return random_positions(flat.size, self.ratio, self.seed, step_key)
        if self.method in ("topk", "topk_int8"):
            count = kept_count(flat.size, self.ratio)
            top = np.argpartition(np.abs(flat), flat.size - count)[flat.size - count :]
            return np.sort(top).astype(np.uint32)
        return None

    def for_evaluation(self) -> Compressor:
        """The compressor of evaluation and prediction passes: ``random`` is
        training noise (like dropout) and sends dense tensors there."""
        if self.method == "random":
            return Compressor("none")
        return self

    def wire_layout(
        self, shape: tuple[int, ...], gradient: bool
    ) -> tuple[str, int, bool]:
        """(value dtype, value count, whether positions travel) of a message."""
        size = int(np.prod(shape))
        count = kept_count(size, self.ratio) if self.sparse else size
        dtype = {"fp16": "float16", "int8": "uint8", "topk_int8": "uint8"}.get(
            self.method, "float32"
        )
        positions = self.method in ("topk", "topk_int8") and not gradient
        return dtype, count, positions

    def positions_of(self, packed: Compressed, step_key: tuple) -> np.ndarray | None:
        """The positions a compressed tensor kept (derived again for ``random``)."""
        if self.method == "random":
            size = int(np.prod(packed.shape))
            return random_positions(size, self.ratio, self.seed, step_key)
        return packed.positions

    def compress(self, hidden: np.ndarray, step_key: tuple) -> Compressed:
        """The forward tensor as it goes on the wire."""
        hidden = np.asarray(hidden, dtype=np.float32)
        shape = hidden.shape
        if self.method == "none":
            return Compressed(shape, hidden)
        if self.method == "fp16":
            return Compressed(shape, hidden.astype(np.float16))
        if self.method == "int8":
            q, scale, zero = quantize(hidden.reshape(-1))
            return Compressed(shape, q, None, scale, zero)
        positions = self.positions(hidden, step_key)
        values = hidden.reshape(-1)[positions]
        sent = None if self.method == "random" else positions
        if self.method == "topk_int8":
            q, scale, zero = quantize(values)
            return Compressed(shape, q, sent, scale, zero)
        return Compressed(shape, values, sent)

    def decompress(
        self, packed: Compressed, step_key: tuple
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The dense float32 tensor the fuse model sees, and the kept positions."""
        size = int(np.prod(packed.shape))
        values = packed.values
        if self.method in ("int8", "topk_int8"):
            values = dequantize(values, packed.scale, packed.zero_point)
        values = np.asarray(values, dtype=np.float32)
        if not self.sparse:
            return values.reshape(packed.shape), None
        positions = self.positions_of(packed, step_key)
        if self.method == "random":
            values = values / np.float32(self.ratio)
        dense = np.zeros(size, np.float32)
        dense[positions] = values
        return dense.reshape(packed.shape), positions

    def compress_gradient(
        self, gradient: np.ndarray, positions: np.ndarray | None
    ) -> Compressed:
        """The gradient back: only at the forward's positions for sparsifiers
        (scaled like the forward for ``random``), quantized like the forward."""
        gradient = np.asarray(gradient, dtype=np.float32)
        shape = gradient.shape
        if self.sparse:
            assert positions is not None
            values = gradient.reshape(-1)[positions]
            if self.method == "random":
                values = values / np.float32(self.ratio)
            if self.method == "topk_int8":
                q, scale, zero = quantize(values)
                return Compressed(shape, q, None, scale, zero)
            return Compressed(shape, values)
        return self.compress(gradient, ())

    def decompress_gradient(
        self, packed: Compressed, positions: np.ndarray | None
    ) -> np.ndarray:
        """The dense gradient of the feature party's (uncompressed) hidden tensor."""
        if not self.sparse:
            return self.decompress(packed, ())[0]
        values = packed.values
        if self.method == "topk_int8":
            values = dequantize(values, packed.scale, packed.zero_point)
        dense = np.zeros(int(np.prod(packed.shape)), np.float32)
        dense[positions] = np.asarray(values, dtype=np.float32)
        return dense.reshape(packed.shape)
