"""A base step that predicts weights: a stale forward runs on ``w + ahead·Δ``
(Δ the last update); without staleness it is the plain step, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base
from splitrec.models.features import INDEX, FeatureShape, PackedBatch
from splitrec.models.steps import BaseStep


def _step(predict: bool, optimizer: str = "adam") -> BaseStep:
    base = build_base(
        "alice",
        [FeatureShape("user", INDEX, 50), FeatureShape("age", INDEX, 7)],
        ModelConfig(8, (16, 8)),
        job_seed=3,
    )
    return BaseStep(base, optimizer, 0.01, predict=predict)


def _batch(seed: int) -> PackedBatch:
    rng = np.random.default_rng(seed)
    indices = np.stack([rng.integers(0, 50, 64), rng.integers(0, 7, 64)], axis=1)
    return PackedBatch(indices.astype(np.int32), np.zeros((64, 0), np.float32))


def _gradient(step: BaseStep, seed: int) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    width = step.model.output_spec.width
    return rng.normal(size=(64, width)).astype(np.float32)


def test_without_staleness_the_predicting_step_is_the_plain_one_bit_for_bit():
    plain, predicting = _step(False), _step(True)
    for seed in range(4):
        batch, following = _batch(seed), _batch(seed + 10)
        a = plain.backward_then_forward(batch, _gradient(plain, seed), following)
        b = predicting.backward_then_forward(
            batch, _gradient(predicting, seed), following, ahead=0
        )
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(
            plain.forward(following).numpy(), predicting.forward(following).numpy()
        )
    for x, y in zip(plain.variables, predicting.variables, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_the_velocity_is_the_last_update():
    step = _step(True, "sgd")
    before = [v.numpy().copy() for v in step.variables]
    step.backward(_batch(0), _gradient(step, 0))
    for velocity, variable, old in zip(
        step.velocity, step.variables, before, strict=True
    ):
        np.testing.assert_array_equal(velocity.numpy(), variable.numpy() - old)
    assert any(np.abs(v.numpy()).sum() > 0 for v in step.velocity)


@pytest.mark.parametrize("ahead", [1, 3])
def test_a_stale_forward_runs_on_the_extrapolated_weights(ahead):
    step = _step(True)
    step.backward(_batch(0), _gradient(step, 0))
    batch = _batch(1)
    predicted = step.forward(batch, ahead=ahead).numpy()
    # The same forward on weights moved by hand to w + ahead·Δ.
    saved = [v.numpy().copy() for v in step.variables]
    for variable, velocity in zip(step.variables, step.velocity, strict=True):
        variable.assign(variable.numpy() + ahead * velocity.numpy())
    by_hand = step.forward(batch).numpy()
    for variable, value in zip(step.variables, saved, strict=True):
        variable.assign(value)
    np.testing.assert_allclose(predicted, by_hand, rtol=1e-5, atol=1e-6)
    assert not np.allclose(predicted, step.forward(batch).numpy(), atol=1e-7)
    # Predicting changes no weight.
    for variable, value in zip(step.variables, saved, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_a_plain_step_ignores_ahead():
    step = _step(False)
    batch = _batch(2)
    np.testing.assert_array_equal(
        step.forward(batch, ahead=5).numpy(), step.forward(batch).numpy()
    )
    assert step.velocity == []
