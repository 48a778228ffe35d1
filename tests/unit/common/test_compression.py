"""Compressors: what each sends, how close the receiver's tensor is, and that the
gradient goes back through the forward's mask."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.common.compression import Compressor, dequantize, quantize

KEY = (1, 0, 7)  # phase, epoch, step


@pytest.fixture
def hidden() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(128, 42)).astype(np.float32)


def test_none_and_fp16_are_dense(hidden):
    for method, itemsize, tolerance in (("none", 4, 0.0), ("fp16", 2, 2e-3)):
        compressor = Compressor(method)
        packed = compressor.compress(hidden, KEY)
        assert packed.nbytes == hidden.size * itemsize and packed.positions is None
        dense, kept = compressor.decompress(packed, KEY)
        assert kept is None
        np.testing.assert_allclose(dense, hidden, atol=tolerance * 4, rtol=tolerance)


def test_int8_error_is_at_most_half_a_step(hidden):
    compressor = Compressor("int8")
    packed = compressor.compress(hidden, KEY)
    assert packed.nbytes == hidden.size
    dense, _ = compressor.decompress(packed, KEY)
    assert np.abs(dense - hidden).max() <= packed.scale / 2 + 1e-6
    assert dense.dtype == np.float32


def test_quantize_constant_tensor_round_trips():
    values = np.full(5, 0.25, np.float32)
    q, scale, zero = quantize(values)
    np.testing.assert_allclose(dequantize(q, scale, zero), values, atol=1e-7)


def test_topk_keeps_the_largest_magnitudes(hidden):
    compressor = Compressor("topk", ratio=0.1)
    packed = compressor.compress(hidden, KEY)
    kept = int(np.ceil(hidden.size * 0.1))
    assert packed.values.size == kept == packed.positions.size
    dense, positions = compressor.decompress(packed, KEY)
    threshold = np.sort(np.abs(hidden).ravel())[-kept]
    assert (np.abs(dense[dense != 0]) >= threshold).all()
    np.testing.assert_array_equal(dense.ravel()[positions], hidden.ravel()[positions])
    assert np.count_nonzero(dense) == kept


def test_random_positions_travel_as_a_seed_and_are_unbiased(hidden):
    compressor = Compressor("random", ratio=0.25, seed=5)
    packed = compressor.compress(hidden, KEY)
    assert packed.positions is None  # the receiver derives them
    dense, positions = compressor.decompress(packed, KEY)
    np.testing.assert_allclose(
        dense.ravel()[positions], hidden.ravel()[positions] / 0.25
    )
    other = Compressor("random", ratio=0.25, seed=5).decompress(
        compressor.compress(hidden, (1, 0, 8)), (1, 0, 8)
    )[1]
    assert not np.array_equal(positions, other)
    total = sum(
        compressor.decompress(compressor.compress(hidden, (1, 0, s)), (1, 0, s))[0]
        for s in range(400)
    )
    # Each value's estimate has standard deviation |h| sqrt((1 - p) / (p n)).
    sigma = np.abs(hidden) * np.sqrt(0.75 / (0.25 * 400))
    assert (np.abs(total / 400 - hidden) <= 6 * sigma + 1e-4).all()
    assert abs(float((total / 400 - hidden).mean())) < 0.01


@pytest.mark.parametrize("method", ["topk", "random", "topk_int8"])
def test_gradient_goes_back_through_the_forward_mask(hidden, method):
    compressor = Compressor(method, ratio=0.1, seed=2)
    packed = compressor.compress(hidden, KEY)
    _, positions = compressor.decompress(packed, KEY)
    gradient = np.random.default_rng(4).normal(size=hidden.shape).astype(np.float32)
    back = compressor.compress_gradient(gradient, positions)
    assert back.positions is None and back.values.size == positions.size
    dense = compressor.decompress_gradient(back, compressor.positions_of(packed, KEY))
    outside = np.ones(hidden.size, bool)
    outside[positions] = False
    assert (dense.ravel()[outside] == 0).all()
    scale = 1 / 0.1 if method == "random" else 1.0
    tolerance = 0.05 if method == "topk_int8" else 1e-6
    np.testing.assert_allclose(
        dense.ravel()[positions], gradient.ravel()[positions] * scale, atol=tolerance
    )


def test_topk_int8_sends_a_quarter_of_topk_values(hidden):
    topk = Compressor("topk", ratio=0.1).compress(hidden, KEY)
    mixed = Compressor("topk_int8", ratio=0.1).compress(hidden, KEY)
    assert mixed.values.nbytes * 4 == topk.values.nbytes
    np.testing.assert_array_equal(mixed.positions, topk.positions)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown compression 'zip'"):
        Compressor("zip")
    with pytest.raises(ValueError, match=r"ratio must lie in \(0, 1\], got 0"):
        Compressor("topk", ratio=0)
