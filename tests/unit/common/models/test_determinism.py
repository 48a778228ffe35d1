"""Sums inside compiled steps come out the same whichever of their inputs other
kernels still hold: that is what changed with thread scheduling before (an
``AddN`` adds the first input nobody else holds first)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from splitrec.models.determinism import ordered_sum


def _terms() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        (rng.normal(size=(64, 8)) * 10.0 ** rng.uniform(-3, 1)).astype(np.float32)
        for _ in range(4)
    ]


def _in_order(values: list[np.ndarray]) -> np.ndarray:
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def _sum(held: tuple[int, ...]):
    """Four terms summed; the terms in ``held`` are also outputs of the step,
    so they are still held when the sum runs."""

    @tf.function
    def step(*terms):
        doubled = [t * 2.0 for t in terms]
        return (ordered_sum(doubled), *(doubled[i] for i in held))

    return step


def test_a_sum_adds_in_order_whichever_inputs_are_still_held():
    terms = _terms()
    expected = _in_order([2 * t for t in terms])

    for held in [(), (0, 1, 2)]:
        assert np.array_equal(_sum(held)(*terms)[0].numpy(), expected), held


def _gradient(held: tuple[int, ...]):
    """x reaches the target along four paths; the gradients that arrive along
    the paths in ``held`` are also outputs of the step, so they are still held
    when the tape sums the four."""

    @tf.function
    def step(x, *terms):
        upstream = [t * 2.0 for t in terms]
        with tf.GradientTape() as tape:
            tape.watch(x)
            paths = [tf.identity(x) for _ in upstream]
        grad = tape.gradient(paths, x, output_gradients=upstream)
        return (grad, *(upstream[i] for i in held))

    return step


def test_the_tape_sums_gradients_the_same_whichever_are_still_held():
    x = np.zeros((64, 8), np.float32)
    terms = _terms()

    sums = [_gradient(held)(x, *terms)[0].numpy() for held in [(), (0, 1), (2, 3)]]

    assert np.array_equal(sums[1], sums[0])
    assert np.array_equal(sums[2], sums[0])
    assert np.allclose(sums[0], _in_order([2 * t for t in terms]), rtol=1e-6)
