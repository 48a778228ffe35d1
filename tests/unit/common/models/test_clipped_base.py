"""A base step with a clip norm sends rows of at most that norm, and its
backward pass differentiates through the clip."""

from __future__ import annotations

import numpy as np

from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base
from splitrec.models.features import INDEX, FeatureShape, PackedBatch
from splitrec.models.steps import BaseStep


def _step(clip_norm: float) -> BaseStep:
    base = build_base(
        "alice",
        [FeatureShape("user", INDEX, 50), FeatureShape("age", INDEX, 7)],
        ModelConfig(8, (16, 8)),
        job_seed=3,
    )
    return BaseStep(base, "sgd", 0.5, clip_norm)


def _batch() -> PackedBatch:
    rng = np.random.default_rng(0)
    indices = np.stack([rng.integers(0, 50, 64), rng.integers(0, 7, 64)], axis=1)
    return PackedBatch(indices.astype(np.int32), np.zeros((64, 0), np.float32))


def test_rows_are_clipped_to_the_norm_and_short_rows_pass_unchanged():
    plain = _step(0.0).forward(_batch()).numpy()
    norms = np.linalg.norm(plain, axis=1)
    clip = float(np.median(norms))
    clipped = _step(clip).forward(_batch()).numpy()
    after = np.linalg.norm(clipped, axis=1)
    assert after.max() <= clip * (1 + 1e-5)
    short = norms < clip
    np.testing.assert_allclose(clipped[short], plain[short], rtol=1e-6)
    # Long rows end on the sphere, pointing the same way: the norm distribution
    # after clipping is the original one with a point mass at C.
    np.testing.assert_allclose(after[~short], clip, rtol=1e-5)
    cosine = np.sum(clipped[~short] * plain[~short], axis=1) / norms[~short] / clip
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


def test_the_update_follows_the_gradient_through_the_clip():
    batch = _batch()
    plain, clipped = _step(0.0), _step(1e-3)
    gradient = np.ones((64, plain.model.output_spec.width), np.float32)
    before = [v.numpy() for v in clipped.variables]
    plain.backward(batch, gradient)
    clipped.backward(batch, gradient)
    moved_plain = sum(
        float(np.abs(v.numpy() - b).sum())
        for v, b in zip(plain.variables, before, strict=True)
    )
    moved_clipped = sum(
        float(np.abs(v.numpy() - b).sum())
        for v, b in zip(clipped.variables, before, strict=True)
    )
    # Every row is far longer than 1e-3: the clip scales its Jacobian down.
    assert 0 < moved_clipped < moved_plain / 10
