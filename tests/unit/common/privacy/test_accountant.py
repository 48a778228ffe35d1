"""The accountant against published values, and the shape of its answers."""

from __future__ import annotations

import math

import pytest

from splitrec.config.privacy import PrivacySettings
from splitrec.privacy.accountant import (
    classic_epsilon,
    embedding_privacy,
    sampled_gaussian_epsilon,
)


@pytest.mark.parametrize(
    ("noise", "batch", "epochs", "published"),
    [
        # TensorFlow Privacy's MNIST tutorial: N = 60,000, δ = 1e-5.
        (1.1, 256, 60, 3.01),
        (1.3, 250, 15, 1.18),
    ],
)
def test_classic_conversion_reproduces_published_epsilons(
    noise, batch, epochs, published
):
    steps = int(epochs * 60_000 / batch)
    assert classic_epsilon(noise, batch / 60_000, steps, 1e-5) == pytest.approx(
        published, abs=0.006
    )


def test_reported_epsilon_is_tighter_than_the_classic_conversion():
    rate, steps = 256 / 60_000, 14_062
    tight = sampled_gaussian_epsilon(1.1, rate, steps, 1e-5)
    assert 2.0 < tight < classic_epsilon(1.1, rate, steps, 1e-5)


def test_epsilon_grows_with_steps_and_shrinks_with_noise():
    rate = 0.01
    few = sampled_gaussian_epsilon(1.0, rate, 100, 1e-5)
    many = sampled_gaussian_epsilon(1.0, rate, 1000, 1e-5)
    quieter = sampled_gaussian_epsilon(2.0, rate, 1000, 1e-5)
    assert 0 < few < many and quieter < many
    assert sampled_gaussian_epsilon(1.0, rate, 0, 1e-5) == 0.0
    assert math.isinf(sampled_gaussian_epsilon(0.0, rate, 10, 1e-5))


def test_per_row_epsilon_composes_one_gaussian_release_per_epoch():
    privacy = PrivacySettings(clip_norm=1.0, noise_multiplier=2.0, delta=1e-5)
    spent = embedding_privacy(privacy, 128, 12_800, 250, 100)
    # 250 steps of 100 per epoch: the rows of 3 epochs were released.
    assert spent.epsilon_per_row == pytest.approx(
        sampled_gaussian_epsilon(2.0, 1.0, 3, 1e-5)
    )
    assert spent.epsilon == pytest.approx(
        sampled_gaussian_epsilon(2.0, 0.01, 250, 1e-5)
    )
    assert spent.epsilon < spent.epsilon_per_row
    assert spent.delta == 1e-5
    assert embedding_privacy(PrivacySettings(), 128, 12_800, 250, 100) is None


def test_per_user_epsilon_composes_each_of_the_busiest_users_rows():
    privacy = PrivacySettings(
        clip_norm=1.0, noise_multiplier=4.0, delta=1e-5, dp_per_user=True
    )
    # 250 steps of 100 per epoch (3 epochs); the busiest user has 7 rows.
    spent = embedding_privacy(privacy, 128, 12_800, 250, 100, user_rows=7)
    assert spent.epsilon_per_user == pytest.approx(
        sampled_gaussian_epsilon(4.0, 1.0, 21, 1e-5)
    )
    # One row per user: the per-row figure; more rows, more ε.
    single = embedding_privacy(privacy, 128, 12_800, 250, 100, user_rows=1)
    assert single.epsilon_per_user == pytest.approx(single.epsilon_per_row)
    busier = embedding_privacy(privacy, 128, 12_800, 250, 100, user_rows=50)
    assert single.epsilon_per_user < spent.epsilon_per_user < busier.epsilon_per_user
    # Not asked for: not reported.
    row_level = PrivacySettings(clip_norm=1.0, noise_multiplier=4.0)
    assert (
        embedding_privacy(row_level, 128, 12_800, 250, 100, 7).epsilon_per_user is None
    )
