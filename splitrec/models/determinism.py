"""Same inputs, same outputs, in every run, however busy the machine is.

A job recovered from a checkpoint replays its steps and must end with the
weights of an uninterrupted run, so no kernel may choose a summation order by
timing or thread scheduling. Importing this module sets TensorFlow up for that:

- op determinism (``tf.config.experimental.enable_op_determinism``);
- sums of several tensors are chains of two-input adds (``ordered_sum``), never
  one ``AddN``: TensorFlow's CPU ``AddN`` writes into the first input that
  nothing else still holds and moves it to the front of the sum, and which
  inputs other kernels still hold depends on how the executor's threads were
  scheduled (under load, a step's sum now and then came out an ulp or more
  apart). A two-input add gives the same bits in either order;
- Grappler's arithmetic optimizer is off: it folds chains of adds back into
  one ``AddN``;
- a gradient tape sums the gradients that reach a tensor along several paths
  with ``ordered_sum`` too, instead of its ``AddN``.

A model someone writes may still call ``tf.add_n``; ``unordered_sums`` finds
such sums in what a model computes, so that building it can warn.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import tensorflow as tf
from tensorflow.python import pywrap_tfe
from tensorflow.python.eager import backprop


def ordered_sum(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """``tensors[0] + tensors[1] + ...``, added in that order, every time."""
    if not tensors:
        raise ValueError("ordered_sum needs at least one tensor")
    return functools.reduce(tf.add, tensors)


# Ops that add three or more inputs in an order chosen at run time.
_UNORDERED = ("AddN", "AccumulateNV2")


def unordered_sums(compute: Callable[[], object]) -> list[str]:
    """The names of the ops in ``compute``'s graph (traced once, not run) whose
    order of summation follows scheduling: ``AddN`` of three or more tensors."""
    graph = tf.function(compute).get_concrete_function().graph
    return [
        op.name
        for op in graph.get_operations()
        if op.type in _UNORDERED and len(op.inputs) >= 3
    ]


def _aggregate_gradients(gradients: list) -> object:
    """The tape's sum of one tensor's gradients (dense or ``IndexedSlices``)."""
    if len(gradients) == 1:
        return gradients[0]
    if all(isinstance(g, tf.IndexedSlices) for g in gradients):
        # Concatenated in order; nothing is added here.
        return _default_aggregate(gradients)
    return ordered_sum([tf.convert_to_tensor(g) for g in gradients])


tf.config.experimental.enable_op_determinism()
tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
_default_aggregate = backprop._default_vspace.aggregate_fn
_VSPACE = backprop._default_vspace._replace(aggregate_fn=_aggregate_gradients)
pywrap_tfe.TFE_Py_RegisterVSpace(_VSPACE)
