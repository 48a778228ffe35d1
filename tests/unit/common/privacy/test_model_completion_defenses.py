"""Model completion against the label party's defenses, on a base trained by
the gradients it would receive: label DP and gradient noise make alice's base
learn the label more slowly, so a head on 40 labelled rows finds less of it,
but none of them hides the label from her at the strengths that keep a model
useful: the base must still learn the label's direction, and she reads it
back."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base
from splitrec.models.features import INDEX, FeatureShape, PackedBatch
from splitrec.models.steps import BaseStep
from splitrec.privacy.inference import model_completion_auc
from splitrec.privacy.mechanisms import defend, randomized_response

USERS, ROWS = 300, 6000


def _data() -> tuple[PackedBatch, np.ndarray]:
    """Rows of 300 users; the label follows each user's bias."""
    rng = np.random.default_rng(4)
    bias = rng.normal(size=USERS)
    users = rng.integers(0, USERS, ROWS)
    labels = (bias[users] + 0.7 * rng.normal(size=ROWS) > 0).astype(np.float32)
    indices = users[:, None].astype(np.int32)
    return PackedBatch(indices, np.zeros((ROWS, 0), np.float32)), labels


def _completion(defense: str = "none", value: float = 0.0) -> float:
    """Model-completion AUC on a base trained for three epochs against a fixed
    linear head, under label DP (``label_dp``, ε) or a gradient defense."""
    batch, labels = _data()
    base = build_base(
        "alice", [FeatureShape("user", INDEX, USERS)], ModelConfig(8, (16, 8)), 5
    )
    step = BaseStep(base, "adam", 0.01)
    width = base.output_spec.width
    head = np.random.default_rng(6).normal(size=width).astype(np.float32)
    train = labels
    if defense == "label_dp":
        train = randomized_response(labels, value, np.random.default_rng(9))
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(ROWS)
        for start in range(0, ROWS, 128):
            rows = order[start : start + 128]
            part = PackedBatch(batch.indices[rows], batch.dense[rows])
            scores = 1.0 / (1.0 + np.exp(-(step.forward(part).numpy() @ head)))
            gradient = ((scores - train[rows])[:, None] * head / rows.size).astype(
                np.float32
            )
            if defense != "label_dp":
                rng = np.random.default_rng([epoch, start])
                gradient = defend(gradient, train[rows], defense, value, rng)
            step.backward(part, gradient)
    outputs = step.forward(batch).numpy()
    return model_completion_auc(outputs, labels, known=40, seed=0, repeats=5)


@pytest.fixture(scope="module")
def undefended() -> float:
    return _completion()


def test_undefended_the_head_finds_the_label(undefended):
    assert undefended > 0.8


def test_label_dp_lowers_model_completion_but_does_not_stop_it(undefended):
    # ε 0.5 flips 38 % of the labels; the base still learns their direction.
    defended = _completion("label_dp", 0.5)
    assert defended < undefended - 0.1
    assert defended > 0.65


def test_directional_noise_lowers_model_completion_a_little(undefended):
    defended = _completion("directional", 3.0)
    assert defended < undefended - 0.02
    assert defended > 0.75


def test_max_norm_leaves_model_completion_as_it_was(undefended):
    # It only equalizes the gradients' lengths: their mean is unchanged.
    assert _completion("max_norm") == pytest.approx(undefended, abs=0.03)
