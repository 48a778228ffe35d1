"""A compiled step: traced once, at its first call, then called as that trace."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from splitrec.models.steps import Compiled


def test_it_traces_once_and_computes_what_the_function_does():
    traces = []
    weight = tf.Variable([[2.0], [3.0]])

    def step(pair: tuple, scale: tf.Tensor) -> tf.Tensor:
        traces.append(1)
        weight.assign_add(tf.ones_like(weight))
        return tf.matmul(pair[0], weight) * scale + tf.cast(pair[1], tf.float32)

    signature = (
        tf.TensorSpec([None, 2], tf.float32),
        tf.TensorSpec([None, 1], tf.int32),
    )
    compiled = Compiled(step, [signature, tf.TensorSpec([], tf.float32)])
    assert not traces  # nothing traced before the first call

    for rows in (3, 1, 0, 5):
        x = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
        ints = np.ones((rows, 1), np.int32)
        before = weight.numpy()
        got = compiled((x, ints), np.float32(0.5)).numpy()
        np.testing.assert_array_equal(got, (x @ (before + 1)) * 0.5 + 1)
    assert len(traces) == 1
    assert any(op.type == "MatMul" for op in compiled.graph.get_operations())
    assert len(traces) == 1
