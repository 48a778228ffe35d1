"""Clipping, Gaussian noise, randomized response and the gradient defenses
produce the statistics they promise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitrec.privacy.leakage import AttackScores, leak_auc
from splitrec.privacy.mechanisms import (
    EMBEDDING_NOISE,
    add_gaussian,
    class_direction,
    defend,
    directional_noise,
    flip_probability,
    generator,
    iso_noise,
    max_norm_noise,
    randomized_response,
)


def _rows(n: int = 20_000, width: int = 42, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Row norms spread from far below to far above the clip norm.
    scale = rng.lognormal(0.0, 1.0, size=(n, 1))
    return (rng.standard_normal((n, width)) * scale / math.sqrt(width)).astype(
        np.float32
    )


def test_gaussian_noise_has_the_configured_variance_and_no_bias():
    values = np.zeros((4000, 50), np.float32)
    noisy = add_gaussian(values, 0.7, generator(1234, EMBEDDING_NOISE, 0, 3))
    assert noisy.dtype == np.float32
    assert noisy.mean() == pytest.approx(0.0, abs=0.005)
    assert noisy.std() == pytest.approx(0.7, rel=0.01)
    # Rows (clipped to C = 1 by the model) plus noise σC: E‖x + n‖² = ‖x‖² + dσ²C².
    rows = _rows(4000, 50)
    rows /= np.maximum(1.0, np.linalg.norm(rows, axis=1, keepdims=True))
    released = add_gaussian(rows, 0.5, generator(1234, EMBEDDING_NOISE, 0, 4))
    excess = np.sum(released**2, axis=1) - np.sum(rows**2, axis=1)
    assert excess.mean() == pytest.approx(50 * 0.25, rel=0.02)


def test_noise_is_the_same_for_the_same_step_and_differs_between_steps():
    values = np.zeros((8, 4), np.float32)
    first = add_gaussian(values, 1.0, generator(7, EMBEDDING_NOISE, 0, 0, 5))
    again = add_gaussian(values, 1.0, generator(7, EMBEDDING_NOISE, 0, 0, 5))
    other = add_gaussian(values, 1.0, generator(7, EMBEDDING_NOISE, 0, 0, 6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 3.0])
def test_randomized_response_flips_each_class_at_the_promised_rate(epsilon):
    labels = (np.random.default_rng(3).random(200_000) < 0.57).astype(np.float32)
    noisy = randomized_response(labels, epsilon, generator(1, 2))
    want = 1 / (1 + math.exp(epsilon))
    assert flip_probability(epsilon) == pytest.approx(want)
    for value in (0.0, 1.0):
        rows = labels == value
        assert np.mean(noisy[rows] != value) == pytest.approx(want, abs=0.005)
    assert set(np.unique(noisy)) <= {0.0, 1.0}


def _gradients(n: int = 4096, width: int = 42, seed: int = 5):
    """Sigmoid-BCE-like gradients: (p − y) times a shared direction with jitter;
    positives are the majority, so their gradients are shorter."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.6).astype(int)
    p = np.clip(rng.normal(0.6, 0.15, n), 0.01, 0.99)
    direction = rng.standard_normal(width)
    jitter = rng.standard_normal((n, width)) * 0.2
    grads = (p - labels)[:, None] * (direction + jitter)
    return labels, grads.astype(np.float32)


def test_max_norm_lifts_every_expected_norm_to_the_batch_maximum():
    _, grads = _gradients(256)
    norms = np.linalg.norm(grads, axis=1)
    squares = np.zeros(256)
    draws = 400
    for i in range(draws):
        noisy = max_norm_noise(grads, generator(1, 3, i))
        squares += np.sum(noisy.astype(np.float64) ** 2, axis=1)
    np.testing.assert_allclose(squares / draws, norms.max() ** 2, rtol=0.05)


def test_iso_noise_has_the_scaled_standard_deviation():
    _, grads = _gradients(256)
    noise = iso_noise(grads, 2.0, generator(1, 3, 0)) - grads
    want = 2.0 * np.linalg.norm(grads, axis=1).max() / math.sqrt(grads.shape[1])
    assert noise.std() == pytest.approx(want, rel=0.02)
    np.testing.assert_array_equal(
        defend(grads, np.zeros(256), "none", 1.0, generator(1, 3)), grads
    )


def test_attacks_read_labels_from_plain_gradients_and_defenses_blunt_them():
    labels, grads = _gradients()
    plain = AttackScores().score(grads)
    assert leak_auc(labels, plain["cosine"]) > 0.99
    assert leak_auc(labels, plain["norm"]) > 0.6
    defended = max_norm_noise(grads, generator(2, 3))
    norm_after = leak_auc(labels, AttackScores().score(defended)["norm"])
    assert norm_after < 0.55
    blurred = iso_noise(grads, 8.0, generator(2, 3))
    cosine_after = leak_auc(labels, AttackScores().score(blurred)["cosine"])
    assert cosine_after < leak_auc(labels, plain["cosine"]) - 0.2


def test_cosine_scores_keep_one_orientation_across_batches():
    labels, grads = _gradients(2048)
    attack = AttackScores()
    scores = np.concatenate(
        [attack.score(part)["cosine"] for part in np.split(grads, 16)]
    )
    # Without the carried sign, half the batches would point the other way.
    assert leak_auc(labels, scores) > 0.99


def test_leak_auc_is_symmetric():
    labels = np.array([0, 0, 1, 1])
    assert leak_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert leak_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert leak_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_directional_noise_moves_rows_only_along_the_class_direction():
    labels, grads = _gradients(512)
    direction = class_direction(grads, labels)
    noisy = directional_noise(grads, labels, 2.0, generator(4, 3))
    change = (noisy - grads).astype(np.float64)
    # Every row moved parallel to the direction, by the promised amount.
    along = change @ direction
    np.testing.assert_allclose(change, along[:, None] * direction, atol=1e-5)
    rms = math.sqrt(np.mean((grads.astype(np.float64) @ direction) ** 2))
    assert along.std() == pytest.approx(2.0 * rms, rel=0.1)
    # The direction separates the classes: the positives' mean lies ahead.
    projection = grads @ direction
    assert projection[labels == 1].mean() > projection[labels == 0].mean()
    blurred = directional_noise(grads, labels, 4.0, generator(4, 3))
    assert leak_auc(labels, AttackScores().score(blurred)["cosine"]) < 0.75
    np.testing.assert_array_equal(
        defend(grads, labels, "directional", 2.0, generator(4, 3)), noisy
    )


def test_class_direction_of_a_one_class_batch_is_the_leading_direction():
    _, grads = _gradients(64)
    direction = class_direction(grads, np.ones(64))
    assert np.linalg.norm(direction) == pytest.approx(1.0)
