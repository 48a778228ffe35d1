"""The job's Adam: Keras's numbers to the bit, with its step's scalars made
once per update instead of once per variable."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from splitrec.models.optimizers import Adam


def _variables() -> list[keras.Variable]:
    rng = np.random.default_rng(4)
    return [
        keras.Variable(rng.normal(size=(6, 3)).astype(np.float32), name="table"),
        keras.Variable(rng.normal(size=(3, 2)).astype(np.float32), name="kernel"),
        keras.Variable(np.zeros(2, np.float32), name="bias"),
    ]


def _gradients(step: int) -> list:
    rng = np.random.default_rng(step)
    rows = tf.IndexedSlices(  # a lookup's gradient: rows, one of them twice
        tf.constant(rng.normal(size=(4, 3)).astype(np.float32)),
        tf.constant([1, 4, 1, 5]),
        tf.constant([6, 3]),
    )
    kernel = tf.constant(rng.normal(size=(3, 2)).astype(np.float32))
    return [rows, kernel, tf.constant(rng.normal(size=2).astype(np.float32))]


def _trained(optimizer: keras.optimizers.Optimizer) -> list[np.ndarray]:
    variables = _variables()
    optimizer.build(variables)

    @tf.function
    def update(step: int) -> None:
        optimizer.apply(_gradients(step), variables)

    for step in range(5):
        update(step)
    return [v.numpy() for v in [*variables, *optimizer.variables]]


@pytest.mark.parametrize("rate", [0.001, 0.05])
def test_its_updates_are_keras_adams_to_the_bit(rate):
    ours = _trained(Adam(learning_rate=rate, name="optimizer"))
    keras_adam = _trained(keras.optimizers.Adam(learning_rate=rate, name="optimizer"))
    assert len(ours) == len(keras_adam)
    for mine, theirs in zip(ours, keras_adam, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_its_variables_are_named_as_keras_adams():
    ours, theirs = Adam(name="optimizer"), keras.optimizers.Adam(name="optimizer")
    ours.build(_variables())
    theirs.build(_variables())
    assert [v.path for v in ours.variables] == [v.path for v in theirs.variables]


def test_an_update_raises_the_bias_corrections_once_not_per_variable():
    def powers(optimizer: keras.optimizers.Optimizer) -> int:
        variables = _variables()
        optimizer.build(variables)
        update = tf.function(lambda: optimizer.apply(_gradients(0), variables))
        graph = update.get_concrete_function().graph
        return sum(op.type == "Pow" for op in graph.get_operations())

    assert powers(Adam()) == 2
    assert powers(keras.optimizers.Adam()) == 2 * len(_variables())
