"""NoPeek (Vepakomma et al. 2020, "NoPeek: Information leakage reduction to
share activations in distributed deep learning"): a feature party trains its
base to keep the distance correlation between its raw inputs and the hidden
tensor it sends small, so that the label party cannot read its features back
from what it receives.

Distance correlation (Székely et al. 2007) is 0 exactly when two random vectors
are independent, and it needs no model of either side. On a batch of B rows it
is computed from the B × B Euclidean distance matrices of the inputs and of
the hidden tensor. We use its bias-corrected square (Székely and Rizzo 2014,
"Partial distance correlation with methods for dissimilarities"): the distance
matrices U-centred (Ã, B̃: rows and columns centred with 1/(B−2), the diagonal
0), then ``dCor²ᵤ = ⟨Ã, B̃⟩ / sqrt(⟨Ã, Ã⟩·⟨B̃, B̃⟩)``. Unlike the plain sample
statistic, whose value on a batch of independent rows is well above 0 (about
0.6 for 128 rows of a 42-wide tensor), its expectation there is 0: the penalty
does not fight the batch's sampling noise and keeps pushing only while there is
dependence left. It can fall below 0; the penalty is ``max(dCor²ᵤ, 0)``.

The raw inputs are a party's packed matrices (``PackedBatch``) read as one
vector per row: each index column one-hot (two rows that differ in it are
√2 apart in it), multi-hot and numeric columns as they are. The one-hot
reading gives every categorical column the same weight, needs no embedding
(which training could shrink to escape the penalty) and works for every input
layout.
"""

from __future__ import annotations

import tensorflow as tf


def _root(squared: tf.Tensor) -> tf.Tensor:
    """Square roots with a zero gradient where the square is 0 (the root's
    gradient is unbounded there)."""
    positive = squared > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, 1.0)), 0.0)


def _squared_distances(values: tf.Tensor) -> tf.Tensor:
    """Pairwise squared Euclidean distances of the rows of ``values``, from
    their norms and inner products (B² memory whatever the width); each row is
    0 from itself."""
    norms = tf.reduce_sum(tf.square(values), axis=1)
    product = tf.matmul(values, values, transpose_b=True)
    squared = tf.maximum(norms[:, None] + norms[None, :] - 2.0 * product, 0.0)
    return tf.linalg.set_diag(squared, tf.zeros_like(norms))


def input_distances(
    indices: tf.Tensor, dense: tf.Tensor, numeric: tf.Tensor
) -> tf.Tensor:
    """Pairwise distances of the rows of a party's packed inputs, index columns
    read one-hot (each differing column adds 2 to the squared distance)."""
    differ = tf.not_equal(indices[:, None, :], indices[None, :, :])
    squared = 2.0 * tf.reduce_sum(tf.cast(differ, tf.float32), axis=2)
    squared += _squared_distances(tf.cast(dense, tf.float32))
    squared += _squared_distances(tf.cast(numeric, tf.float32))
    return _root(squared)


def hidden_distances(hidden: tf.Tensor) -> tf.Tensor:
    """Pairwise distances of the rows of a hidden tensor."""
    return _root(_squared_distances(hidden))


def _u_centred(distances: tf.Tensor) -> tf.Tensor:
    """The U-centred distance matrix (its diagonal 0); meaningful from 4 rows
    on (fewer are computed as if there were 4, finite but meaningless)."""
    size = tf.maximum(tf.cast(tf.shape(distances)[0], distances.dtype), 4.0)
    rows = tf.reduce_sum(distances, axis=1, keepdims=True) / (size - 2.0)
    columns = tf.reduce_sum(distances, axis=0, keepdims=True) / (size - 2.0)
    total = tf.reduce_sum(distances) / ((size - 1.0) * (size - 2.0))
    centred = distances - rows - columns + total
    return tf.linalg.set_diag(centred, tf.zeros_like(centred[:, 0]))


def distance_correlation(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """The bias-corrected squared distance correlation of two sets of rows,
    given by their pairwise distance matrices (``[B, B]`` each, B ≥ 4): at most
    1, about 0 for independent rows (it may fall below); 0 when either side
    does not vary."""
    a, b = _u_centred(first), _u_centred(second)
    covariance = tf.reduce_sum(a * b)
    variances = tf.reduce_sum(a * a) * tf.reduce_sum(b * b)
    return tf.math.divide_no_nan(covariance, _root(variances))


def nopeek_penalty(
    inputs: tuple[tf.Tensor, tf.Tensor, tf.Tensor], hidden: tf.Tensor
) -> tf.Tensor:
    """``max(dCor²ᵤ, 0)`` between a batch's packed inputs (index, multi-hot,
    numeric) and the hidden tensor computed from them; 0 for a batch of fewer
    than 4 rows (too few to tell)."""
    statistic = distance_correlation(input_distances(*inputs), hidden_distances(hidden))
    enough = tf.shape(hidden)[0] >= 4
    return tf.where(enough, tf.maximum(statistic, 0.0), 0.0)
