"""NoPeek: the distance correlation between a party's inputs and its hidden
tensor, and a base step that keeps it low hides the party's features from a
decoder without losing what the label needs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base
from splitrec.models.features import INDEX, FeatureShape, PackedBatch
from splitrec.models.steps import BaseStep
from splitrec.privacy.inference import feature_inference
from splitrec.privacy.nopeek import (
    input_distances,
    nopeek_penalty,
)


def distance_correlation_numpy(first: np.ndarray, second: np.ndarray) -> float:
    """The bias-corrected squared distance correlation of two row-aligned
    matrices, written out in numpy: the oracle the TensorFlow penalty is
    checked against."""

    def centred(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float64).reshape(len(values), -1)
        distances = np.linalg.norm(values[:, None, :] - values[None, :, :], axis=2)
        size = len(values)
        out = (
            distances
            - distances.sum(axis=1, keepdims=True) / (size - 2)
            - distances.sum(axis=0, keepdims=True) / (size - 2)
            + distances.sum() / ((size - 1) * (size - 2))
        )
        np.fill_diagonal(out, 0.0)
        return out

    a, b = centred(first), centred(second)
    variances = (a * a).sum() * (b * b).sum()
    if variances <= 0:
        return 0.0
    return float((a * b).sum() / np.sqrt(variances))


def _packed(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, ...]:
    indices = rng.integers(0, 3, (rows, 4)).astype(np.int32)
    dense = rng.integers(0, 2, (rows, 3)).astype(np.float32)
    numeric = rng.normal(size=(rows, 2)).astype(np.float32)
    return indices, dense, numeric


def _one_hot(indices: np.ndarray, dense: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    columns = [np.eye(3)[indices[:, k]] for k in range(indices.shape[1])]
    return np.concatenate([*columns, dense, numeric], axis=1)


def test_input_distances_read_index_columns_one_hot():
    indices, dense, numeric = _packed(np.random.default_rng(0), 32)
    explicit = _one_hot(indices, dense, numeric)
    want = np.linalg.norm(explicit[:, None] - explicit[None], axis=2)
    got = input_distances(indices, dense, numeric).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert not np.diag(got).any()


def test_the_penalty_is_the_distance_correlation_of_the_one_hot_inputs():
    rng = np.random.default_rng(1)
    inputs = _packed(rng, 64)
    hidden = rng.normal(size=(64, 5)).astype(np.float32)
    want = distance_correlation_numpy(_one_hot(*inputs), hidden)
    assert float(nopeek_penalty(inputs, hidden)) == pytest.approx(want, rel=1e-4)


def test_the_penalty_is_one_for_a_copy_and_about_zero_for_independent_rows():
    rng = np.random.default_rng(2)
    inputs = _packed(rng, 128)
    copy = 3.0 * _one_hot(*inputs).astype(np.float32)
    other = rng.normal(size=(128, 5)).astype(np.float32)
    assert float(nopeek_penalty(inputs, copy)) == pytest.approx(1.0, abs=1e-4)
    # Bias-corrected: independent rows score about 0, where the plain sample
    # statistic is well above it.
    assert float(nopeek_penalty(inputs, other)) < 0.05


def test_a_constant_hidden_tensor_has_penalty_zero_and_a_finite_gradient():
    inputs = _packed(np.random.default_rng(3), 16)
    hidden = tf.Variable(tf.ones([16, 4]))
    with tf.GradientTape() as tape:
        penalty = nopeek_penalty(inputs, hidden)
    assert float(penalty) == 0.0
    assert np.isfinite(tape.gradient(penalty, hidden).numpy()).all()


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_a_batch_too_small_to_tell_has_penalty_zero_and_no_gradient(rows):
    inputs = _packed(np.random.default_rng(8), rows)
    hidden = tf.Variable(np.random.default_rng(9).normal(size=(rows, 4)))
    with tf.GradientTape() as tape:
        penalty = nopeek_penalty(inputs, tf.cast(hidden, tf.float32))
    assert float(penalty) == 0.0
    assert not np.asarray(tape.gradient(penalty, hidden)).any()


USERS, ROWS = 200, 4000
EPOCHS = 3


def _party() -> tuple[PackedBatch, np.ndarray, np.ndarray]:
    """Rows of 200 users with a gender each; the label follows a per-user
    bias that gender does not predict."""
    rng = np.random.default_rng(4)
    gender = rng.integers(0, 2, USERS)
    bias = rng.normal(size=USERS)
    users = rng.integers(0, USERS, ROWS)
    labels = (bias[users] + 0.5 * rng.normal(size=ROWS) > 0).astype(np.float32)
    indices = np.stack([users, gender[users]], axis=1).astype(np.int32)
    return PackedBatch(indices, np.zeros((ROWS, 0), np.float32)), gender[users], labels


def _trained(nopeek: float) -> tuple[BaseStep, np.ndarray]:
    """A base trained against a fixed linear head on the label (the gradient
    the label party would return), and the hidden tensor of every row."""
    batch, _, labels = _party()
    base = build_base(
        "alice",
        [FeatureShape("user", INDEX, USERS), FeatureShape("gender", INDEX, 2)],
        ModelConfig(8, (16, 8)),
        job_seed=5,
    )
    step = BaseStep(base, "adam", 0.01, nopeek=nopeek)
    width = base.output_spec.width
    head = np.random.default_rng(6).normal(size=width).astype(np.float32)
    for epoch in range(EPOCHS):
        order = np.random.default_rng(epoch).permutation(ROWS)
        for start in range(0, ROWS, 128):
            rows = order[start : start + 128]
            part = PackedBatch(batch.indices[rows], batch.dense[rows])
            hidden = step.forward(part).numpy()
            scores = 1.0 / (1.0 + np.exp(-(hidden @ head)))
            gradient = ((scores - labels[rows])[:, None] * head) / rows.size
            step.backward(part, gradient.astype(np.float32))
    return step, step.forward(batch).numpy()


def _label_auc(hidden: np.ndarray, labels: np.ndarray) -> float:
    from splitrec.privacy.inference import model_completion_auc

    return model_completion_auc(hidden, labels, known=400, seed=0, repeats=2)


def test_nopeek_hides_a_feature_the_label_does_not_need():
    batch, gender, labels = _party()
    users = batch.indices[:, 0]
    found = {}
    for weight in (0.0, 1.0):
        _, hidden = _trained(weight)
        # Scored on the users none of the 200 known rows is about: the tensor
        # must tell their gender, not recognize a known user.
        attack = feature_inference(
            hidden, {"gender": gender}, known=200, seed=0, groups=users
        )
        found[weight] = (attack["gender"], _label_auc(hidden, labels))
    plain, hidden_away = found[0.0][0], found[1.0][0]
    assert plain.advantage > 0.3, found
    assert hidden_away.advantage < 0.05, found
    # What the label needs is still there.
    assert found[1.0][1] > found[0.0][1] - 0.02, found


def test_weight_zero_is_the_plain_backward_pass():
    batch, _, _ = _party()
    part = PackedBatch(batch.indices[:64], batch.dense[:64])
    steps = []
    for kwargs in ({}, {"nopeek": 0.0}):
        base = build_base(
            "alice",
            [FeatureShape("user", INDEX, USERS), FeatureShape("gender", INDEX, 2)],
            ModelConfig(8, (16, 8)),
            job_seed=5,
        )
        step = BaseStep(base, "adam", 0.01, **kwargs)
        shape = (64, base.output_spec.width)
        gradient = np.random.default_rng(7).normal(size=shape).astype(np.float32)
        step.backward(part, gradient)
        steps.append([v.numpy() for v in step.variables])
    for first, second in zip(*steps, strict=True):
        np.testing.assert_array_equal(first, second)
