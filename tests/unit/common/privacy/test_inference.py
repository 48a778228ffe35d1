"""Feature inference and model completion: each beats its no-information
baseline clearly when the tensors carry the answer, and stays at it when they
do not."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from splitrec.privacy.inference import (
    ConstantGuess,
    feature_inference,
    fit_decoder,
    known_rows,
    majority_accuracy,
    model_completion_auc,
    train_classifier,
)
from splitrec.privacy.mechanisms import EMBEDDING_NOISE, add_gaussian, generator

ROWS = 3000


def _users(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "gender": rng.choice(["F", "M"], ROWS, p=[0.3, 0.7]),
        "age": rng.choice([1, 18, 25, 35, 45, 50, 56], ROWS),
    }


def _planted(features: dict[str, np.ndarray], noise: float) -> np.ndarray:
    """Tensors that embed each feature's value (a random vector per value),
    plus Gaussian noise."""
    rng = np.random.default_rng(1)
    parts = []
    for values in features.values():
        classes, codes = np.unique(values, return_inverse=True)
        parts.append(rng.normal(size=(classes.size, 6))[codes])
    tensor = np.concatenate(parts, axis=1)
    return tensor + noise * rng.normal(size=tensor.shape)


def test_majority_accuracy_is_the_share_of_the_most_common_value():
    assert majority_accuracy(np.array(["a", "b", "b", "b"])) == 0.75
    assert majority_accuracy(np.array([3, 3, 1, 2, 2, 2])) == 0.5


def test_known_rows_are_a_seeded_mask_of_the_count_asked():
    mask = known_rows(100, 10, seed=4)
    assert mask.sum() == 10 and np.array_equal(mask, known_rows(100, 10, seed=4))
    assert known_rows(5, 50, seed=4).sum() == 4  # at least one row is attacked


def test_a_classifier_learns_a_nonlinear_rule():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1500, 2))
    y = np.where(x[:, 0] * x[:, 1] > 0, "same", "differ")  # no linear rule
    mlp = train_classifier(x[:1000], y[:1000], seed=0)
    linear = train_classifier(x[:1000], y[:1000], seed=0, hidden_units=0)
    assert np.mean(mlp.predict(x[1000:]) == y[1000:]) > 0.9
    assert np.mean(linear.predict(x[1000:]) == y[1000:]) < 0.7


def test_feature_inference_reads_planted_features_back_from_few_rows():
    features = _users()
    found = feature_inference(_planted(features, 0.3), features, known=60, seed=0)
    for name, result in found.items():
        assert result.known_rows == 60 and result.attacked_rows == ROWS - 60
        assert result.accuracy > 0.95, (name, result)
        assert result.advantage > 0.25, (name, result)


def test_feature_inference_on_tensors_without_the_features_stays_at_the_baseline():
    features = _users()
    noise = np.random.default_rng(3).normal(size=(ROWS, 12))
    found = feature_inference(noise, features, known=300, seed=0)
    for name, result in found.items():
        assert abs(result.advantage) < 0.05, (name, result)


def test_an_attacker_falls_back_to_the_majority_when_the_tensors_do_not_help():
    rng = np.random.default_rng(5)
    values = rng.choice(["F", "M"], 600, p=[0.2, 0.8])
    decoder = fit_decoder(rng.normal(size=(600, 8)), values, seed=0)
    assert decoder == ConstantGuess("M")
    assert list(decoder.predict(np.zeros((2, 8)))) == ["M", "M"]


def _label_outputs(signal: float) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of 500 'users' (each repeated over rows) whose first direction
    is the user's bias toward the positive label, scaled by ``signal``."""
    rng = np.random.default_rng(6)
    users = rng.integers(0, 500, 20_000)
    bias = rng.normal(size=500)
    labels = (bias[users] + rng.normal(size=users.size) > 0).astype(np.int64)
    embedding = rng.normal(size=(500, 16))
    embedding[:, 0] += signal * bias
    return embedding[users], labels


def test_model_completion_finds_the_label_from_forty_known_rows():
    outputs, labels = _label_outputs(signal=3.0)
    # The users' bias itself scores 0.82: most of its lead over 0.5 is found.
    assert model_completion_auc(outputs, labels, known=40, seed=0) > 0.65


def test_model_completion_without_a_signal_is_a_coin_toss():
    outputs, labels = _label_outputs(signal=0.0)
    assert model_completion_auc(outputs, labels, known=40, seed=0) == pytest.approx(
        0.5, abs=0.03
    )


def test_model_completion_draws_both_classes_even_when_one_is_rare():
    outputs, labels = _label_outputs(signal=3.0)
    rare = labels.copy()
    rare[np.flatnonzero(rare)[5:]] = 0  # five positives in 20,000 rows
    auc = model_completion_auc(outputs, rare, known=4, seed=0, repeats=3)
    assert 0.0 <= auc <= 1.0


def test_with_groups_only_unknown_users_count_and_known_ones_are_scored_apart():
    """Tensors that name the user but say nothing of the user's gender: a
    decoder recognizes the known users' rows, and cannot go further."""
    rng = np.random.default_rng(8)
    users = rng.integers(0, 300, ROWS)
    gender = rng.choice(["F", "M"], 300, p=[0.3, 0.7])[users]
    tensors = rng.normal(size=(300, 16))[users]
    found = feature_inference(tensors, {"gender": gender}, 300, 0, groups=users)
    result = found["gender"]
    known_users = np.unique(users[known_rows(ROWS, 300, 0)])
    assert result.attacked_rows == int((~np.isin(users, known_users)).sum())
    assert result.linked_rows == ROWS - 300 - result.attacked_rows
    # No lead over a guess on new users (a decoder that learnt the known
    # users by heart may even fall below it), all of it on known ones.
    assert result.advantage < 0.05, result
    assert result.linked_accuracy > 0.95, result


def test_embedding_dp_noise_lowers_what_feature_inference_reads():
    """The release embedding DP makes (each row clipped to norm 1 as the base
    model clips it, then N(0, 1) noise per entry as the party adds it) leaves
    the decoder far less than the clipped tensor does."""
    features = _users()
    tensor = _planted(features, 0.3).astype(np.float32)
    clipped = tf.clip_by_norm(tensor, 1.0, axes=[1]).numpy()
    noised = add_gaussian(clipped, 1.0, generator(0, EMBEDDING_NOISE, 0))
    plain = feature_inference(clipped, features, known=300, seed=0)
    defended = feature_inference(noised, features, known=300, seed=0)
    for name in features:
        assert plain[name].advantage > 0.25, (name, plain[name])
        assert defended[name].advantage < plain[name].advantage / 2, (
            name,
            plain[name],
            defended[name],
        )
