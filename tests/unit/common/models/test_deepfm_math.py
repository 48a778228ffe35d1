"""The fuse output equals DeepFM recomputed by hand in NumPy."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base, build_fuse
from splitrec.models.features import INDEX, MULTI_HOT, FeatureShape
from splitrec.models.steps import create_weights


def _relu_stack(x: np.ndarray, layers: list) -> np.ndarray:
    for layer in layers:
        kernel, bias = (w.numpy() for w in layer.weights)
        x = np.maximum(x @ kernel + bias, 0.0)
    return x


def _numpy_deepfm(bases, fuse, inputs) -> np.ndarray:
    """DeepFM over all fields of all parties, written out term by term."""
    vectors, firsts, deeps = [], [], []
    for base, x in zip(bases, inputs, strict=True):
        field_vectors = []
        for shape in base.shapes:
            table = base.embedding.field_rows(shape.name)
            weights = base.embedding.field_rows(shape.name, first_order=True)[:, 0]
            if shape.encoding == INDEX:
                active = [[int(i)] for i in x[shape.name]]
            else:
                active = [list(np.flatnonzero(row)) for row in x[shape.name]]
            # Every active value is one FM feature with x = 1.
            for row, values in enumerate(active):
                vectors.append((row, [table[v] for v in values]))
                firsts.append((row, sum(weights[v] for v in values)))
            field_vectors.append(
                np.stack(
                    [
                        sum((table[v] for v in vals), np.zeros(table.shape[1]))
                        for vals in active
                    ]
                )
            )
        deeps.append(_relu_stack(np.concatenate(field_vectors, axis=1), base.deep))
    batch = len(inputs[0][bases[0].shapes[0].name])
    first = np.zeros(batch)
    for row, value in firsts:
        first[row] += value
    pairwise = np.zeros(batch)
    per_row = [[] for _ in range(batch)]
    for row, vs in vectors:
        per_row[row].extend(vs)
    for row, vs in enumerate(per_row):
        for i in range(len(vs)):
            for j in range(i + 1, len(vs)):
                pairwise[row] += float(np.dot(vs[i], vs[j]))
    deep = _relu_stack(np.concatenate(deeps, axis=1), fuse.deep)
    kernel, bias = (w.numpy() for w in fuse.logit.weights)
    logit = first + pairwise + (deep @ kernel + bias)[:, 0]
    return 1.0 / (1.0 + np.exp(-logit))


def test_fuse_output_matches_numpy_deepfm():
    alice = build_base(
        "alice",
        [FeatureShape("user", INDEX, 7), FeatureShape("age", INDEX, 4)],
        ModelConfig(3, (5, 2)),
        job_seed=11,
    )
    bob = build_base(
        "bob",
        [FeatureShape("movie", INDEX, 6), FeatureShape("genres", MULTI_HOT, 5)],
        ModelConfig(3, (4, 2)),
        job_seed=12,
    )
    outputs = {"alice": alice.output_spec, "bob": bob.output_spec}
    fuse = build_fuse(outputs, ModelConfig(3, (4, 2), (6, 3)), job_seed=13)
    create_weights(alice)
    create_weights(bob)
    # Non-zero biases so that every term is exercised.
    for layer in [*alice.deep, *bob.deep]:
        layer.bias.assign(np.linspace(-0.1, 0.2, layer.bias.shape[0]))
    x_alice = {
        "user": np.array([0, 3, 6], np.int32),
        "age": np.array([1, 1, 2], np.int32),
    }
    x_bob = {
        "movie": np.array([5, 0, 2], np.int32),
        "genres": np.array(
            [[0, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], np.float32
        ),
    }
    hiddens = [alice(x_alice), bob(x_bob)]
    got = tf.sigmoid(fuse(hiddens)).numpy()[:, 0]
    expected = _numpy_deepfm([alice, bob], fuse, [x_alice, x_bob])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_base_output_layout_is_deep_sum_squares_first_order():
    shapes = [FeatureShape("a", INDEX, 4), FeatureShape("b", INDEX, 4)]
    base = build_base("alice", shapes, ModelConfig(2, (3,)), job_seed=1)
    create_weights(base)
    out = base({"a": np.array([1], np.int32), "b": np.array([2], np.int32)}).numpy()[0]
    va = base.embedding.field_rows("a")[1]
    vb = base.embedding.field_rows("b")[2]
    assert out.shape == (3 + 2 + 2,)
    np.testing.assert_allclose(out[3:5], va + vb, rtol=1e-6)
    np.testing.assert_allclose(out[5], np.sum(va**2) + np.sum(vb**2), rtol=1e-6)
    wa = base.embedding.field_rows("a", first_order=True)[1, 0]
    wb = base.embedding.field_rows("b", first_order=True)[2, 0]
    np.testing.assert_allclose(out[6], wa + wb, rtol=1e-6)


def test_equal_seeds_give_equal_weights_and_different_seeds_do_not():
    shapes = [FeatureShape("a", INDEX, 10)]
    first, second, other = (
        build_base("alice", shapes, ModelConfig(4, (8, 2)), job_seed=s)
        for s in (5, 5, 6)
    )
    for model in (first, second, other):
        create_weights(model)
    for a, b in zip(first.trainable_variables, second.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(
        first.embedding.field_rows("a"), other.embedding.field_rows("a")
    )
