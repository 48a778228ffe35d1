"""MID's bottleneck on a base step: the KL term is the closed form, a forward
samples the code only when given noise (evaluation and serving take the mean),
the backward differentiates through the forward's own noise and the KL term,
and a stale forward of a predicting step extrapolates the bottleneck too."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base
from splitrec.models.features import INDEX, FeatureShape, PackedBatch
from splitrec.models.serving import BaseServing
from splitrec.models.steps import BaseStep, base_hidden, packed, unpack
from splitrec.privacy.mid import Bottleneck, kl_to_standard_normal

DIM = 4
ROWS = 64


def _step(weight: float = 0.1, predict: bool = False, seed: int = 5) -> BaseStep:
    base = build_base(
        "alice",
        [FeatureShape("user", INDEX, 50), FeatureShape("age", INDEX, 7)],
        ModelConfig(8, (16, 8)),
        job_seed=3,
    )
    bottleneck = Bottleneck(base.output_spec.width, DIM, seed, name="mid")
    return BaseStep(
        base, "sgd", 0.05, predict=predict, bottleneck=bottleneck, mid_weight=weight
    )


def _batch(seed: int) -> PackedBatch:
    rng = np.random.default_rng(seed)
    indices = np.stack([rng.integers(0, 50, ROWS), rng.integers(0, 7, ROWS)], axis=1)
    return PackedBatch(indices.astype(np.int32), np.zeros((ROWS, 0), np.float32))


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((ROWS, DIM)).astype(np.float32)


def _gradient(step: BaseStep, seed: int) -> np.ndarray:
    width = step.model.output_spec.width
    rng = np.random.default_rng(100 + seed)
    return rng.normal(size=(ROWS, width)).astype(np.float32)


def _weights(step: BaseStep) -> list[np.ndarray]:
    return [v.numpy().copy() for v in step.variables]


def test_the_kl_term_is_the_closed_form_and_zero_at_the_prior():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(10, DIM)).astype(np.float32)
    log_var = rng.normal(size=(10, DIM)).astype(np.float32)
    want = 0.5 * np.sum(mean**2 + np.exp(log_var) - log_var - 1, axis=1).mean()
    found = kl_to_standard_normal(tf.constant(mean), tf.constant(log_var))
    assert float(found) == pytest.approx(want, rel=1e-5)
    zeros = tf.zeros((10, DIM))
    assert float(kl_to_standard_normal(zeros, zeros)) == 0.0


def test_a_forward_samples_the_code_only_when_given_noise():
    step = _step()
    batch = _batch(0)
    mean = step.forward(batch).numpy()
    np.testing.assert_array_equal(
        mean, step.forward(batch, noise=np.zeros((ROWS, DIM), np.float32)).numpy()
    )
    # The code's mean is what the base and the bottleneck give with no noise.
    hidden = step.model(unpack(step.model.shapes, packed(batch)))
    code, log_var = step.bottleneck.moments(hidden)
    np.testing.assert_allclose(
        mean, step.bottleneck.decoder(code).numpy(), rtol=1e-6, atol=1e-6
    )
    noise = _noise(1)
    sampled = step.forward(batch, noise=noise).numpy()
    want = step.bottleneck.decoder(code + tf.exp(0.5 * log_var) * noise).numpy()
    np.testing.assert_allclose(sampled, want, rtol=1e-5, atol=1e-5)
    assert np.abs(sampled - mean).max() > 1e-3
    # The same noise, the same code: nothing else is random.
    np.testing.assert_array_equal(sampled, step.forward(batch, noise=noise).numpy())


def test_the_backward_differentiates_through_the_forwards_noise_and_the_kl():
    batch, gradient, noise = _batch(0), None, _noise(1)
    step = _step(weight=0.3)
    gradient = _gradient(step, 0)
    # The update by hand: the gradient of Σ hidden·g + weight·KL, through the
    # same noise, applied by plain SGD.
    with tf.GradientTape() as tape:
        own = step.model(unpack(step.model.shapes, packed(batch)))
        hidden = step.bottleneck(own, tf.constant(noise))
        target = tf.reduce_sum(hidden * gradient) + 0.3 * step.bottleneck.kl(own)
    grads = tape.gradient(target, step.variables)
    want = [
        v.numpy() - 0.05 * tf.convert_to_tensor(g).numpy()
        for v, g in zip(step.variables, grads, strict=True)
    ]
    step.backward(batch, gradient, noise)
    for found, expected in zip(_weights(step), want, strict=True):
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)

    # Another noise is another update.
    other = _step(weight=0.3)
    other.backward(batch, gradient, _noise(2))
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(_weights(step), _weights(other), strict=True)
    )


def test_the_kl_term_alone_pulls_the_codes_toward_the_prior():
    step = _step(weight=1.0)
    batch = _batch(0)
    zero = np.zeros((ROWS, step.model.output_spec.width), np.float32)
    # Codes far from the prior: every mean near 1.
    step.bottleneck.encoder.bias.assign(np.r_[np.ones(DIM), np.zeros(DIM)])

    def kl() -> float:
        hidden = step.model(unpack(step.model.shapes, packed(batch)))
        return float(step.bottleneck.kl(hidden))

    before = kl()
    for seed in range(30):
        step.backward(batch, zero, _noise(seed))
    assert before > 1.0
    assert kl() < 0.2 * before


def test_a_stale_forward_extrapolates_the_bottleneck_too():
    step = _step(predict=True)
    batch, following = _batch(0), _batch(1)
    step.backward(batch, _gradient(step, 0), _noise(0))
    ahead = step.forward(following, ahead=2).numpy()
    # By hand: every variable, the bottleneck's included, moved on by 2·Δ.
    moved = [
        v.numpy() + 2 * u.numpy()
        for v, u in zip(step.variables, step.velocity, strict=True)
    ]
    kept = _weights(step)
    for variable, value in zip(step.variables, moved, strict=True):
        variable.assign(value)
    np.testing.assert_allclose(
        ahead, step.forward(following).numpy(), rtol=1e-5, atol=1e-6
    )
    for variable, value in zip(step.variables, kept, strict=True):
        variable.assign(value)
    assert any(np.abs(u.numpy()).max() > 0 for u in step.velocity[-4:])


def test_checkpoints_serving_and_the_keras_file_carry_the_bottleneck(tmp_path):
    step = _step()
    paths = [v.path for v in step.state_variables]
    assert sum(p.startswith("mid/") for p in paths) == 4, paths
    batch = _batch(0)
    served = base_hidden(
        step.model, unpack(step.model.shapes, packed(batch)), 0.0, step.bottleneck
    )
    np.testing.assert_array_equal(served.numpy(), step.forward(batch).numpy())
    serving = BaseServing([], step.model, bottleneck=step.bottleneck)
    assert set(map(id, step.bottleneck.variables)) <= set(map(id, serving.weights))
    config = Bottleneck.from_config(step.bottleneck.get_config()).get_config()
    assert (config["width"], config["dim"]) == (step.model.output_spec.width, DIM)
    assert isinstance(step.bottleneck, keras.layers.Layer)
