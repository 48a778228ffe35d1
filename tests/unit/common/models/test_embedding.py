"""A party's fields in one table: each field's rows start as a table of its
own would, index fields cost one lookup, and the optimizer sees rows."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from splitrec.common.errors import CheckpointMismatchError
from splitrec.common.seeds import derive_seed
from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base
from splitrec.models.embedding import PartyEmbedding, table_offsets
from splitrec.models.features import (
    INDEX,
    MULTI_HOT,
    NUMERIC,
    SEQUENCE,
    FeatureShape,
    PackedBatch,
)
from splitrec.models.steps import BaseStep, create_weights, input_signature, unpack
from splitrec.party_server.checkpoints import ModelState

SHAPES = (
    FeatureShape("user", INDEX, 7),
    FeatureShape("genres", MULTI_HOT, 4),
    FeatureShape("history", SEQUENCE, 5, 3, "item"),
    FeatureShape("item", INDEX, 5),
    FeatureShape("price", NUMERIC, 2),
)


def _own_table(seed: int, rows: int, width: int) -> np.ndarray:
    init = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)
    return np.asarray(init((rows, width)))


def test_fields_sit_at_offsets_and_a_shared_table_has_no_rows_of_its_own():
    assert table_offsets(SHAPES) == {
        "user": 0,
        "genres": 7,
        "item": 11,
        "history": 11,
        "price": 16,
    }
    with pytest.raises(ValueError, match="shares the table of 'movie'"):
        table_offsets((FeatureShape("history", SEQUENCE, 5, 3, "movie"),))


@pytest.mark.parametrize("family", ["deepfm", "dnn"])
def test_each_fields_rows_start_as_a_table_of_its_own(family):
    base = build_base("bob", SHAPES, ModelConfig(3, (4,), family=family), 21)
    create_weights(base)
    embedding = base.embedding
    assert embedding.embeddings.shape == (18, 3)
    for shape in SHAPES:
        if shape.shares:
            continue
        seed = derive_seed(embedding.seed, shape.name)
        np.testing.assert_array_equal(
            embedding.field_rows(shape.name), _own_table(seed, shape.size, 3)
        )
        if family == "deepfm":
            np.testing.assert_array_equal(
                embedding.field_rows(shape.name, first_order=True),
                _own_table(seed + 1, shape.size, 1),
            )
    assert (embedding.first_order is None) == (family == "dnn")


def test_index_fields_are_looked_up_with_one_gather_per_table():
    shapes = tuple(FeatureShape(n, INDEX, 6) for n in ("a", "b", "c", "d"))
    base = build_base("alice", shapes, ModelConfig(3, (4,)), 5)
    create_weights(base)
    forward = tf.function(lambda x: base(unpack(shapes, x)))
    graph = forward.get_concrete_function(input_signature(shapes)).graph
    gathers = [op for op in graph.get_operations() if op.type.startswith("Gather")]
    assert len(gathers) == 2  # the embeddings and the first-order weights
    ids = np.array([[1, 2, 3, 4]], np.int32)
    parts = base.embedding({n: tf.constant(ids[:, i]) for i, n in enumerate("abcd")})
    for (vectors, squares, first), name, row in zip(parts, "abcd", ids[0], strict=True):
        expected = base.embedding.field_rows(name)[row]
        np.testing.assert_array_equal(vectors.numpy()[0], expected)
        np.testing.assert_allclose(squares.numpy()[0, 0], np.sum(expected**2))
        weight = base.embedding.field_rows(name, first_order=True)[row]
        np.testing.assert_array_equal(first.numpy()[0], weight)


def test_the_optimizer_gets_rows_whatever_fields_share_the_table():
    """Multi-hot and numeric fields' rows are gathered too: the table's
    gradient stays IndexedSlices, so every field's rows are updated as a table
    of the field's own was."""
    base = build_base("bob", SHAPES, ModelConfig(3, (4,)), 21)
    create_weights(base)
    inputs = {
        "user": tf.constant([1, 2]),
        "genres": tf.constant([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]),
        "history": tf.constant([[-1, 0, 4], [2, 2, 3]]),
        "item": tf.constant([4, 0]),
        "price": tf.constant([[0.5, 0.0], [2.0, 1.0]]),
    }
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(base(inputs))
    gradients = tape.gradient(total, [base.embedding.embeddings])
    assert isinstance(gradients[0], tf.IndexedSlices)


def test_a_numeric_fields_scaling_is_fitted_per_field():
    shapes = (
        FeatureShape("a", NUMERIC, 1, scale="standard"),
        FeatureShape("item", INDEX, 3),
        FeatureShape("b", NUMERIC, 2, scale="minmax"),
    )
    embedding = PartyEmbedding(shapes, 2, 9, name="embedding")
    embedding.build()
    numeric = np.array([[1.0, 0.0, 0.0], [3.0, 4.0, 1.0]], np.float32)
    embedding.fit(numeric)
    np.testing.assert_allclose(embedding.center.numpy(), [2.0, 0.0])
    np.testing.assert_allclose(embedding.spread.numpy(), [1.0, 4.0])


def test_a_checkpoint_of_one_table_per_field_is_refused_by_name():
    """A checkpoint written when every field had its own table names the
    variables that differ; nothing is loaded."""
    shapes = (FeatureShape("a", INDEX, 4), FeatureShape("b", INDEX, 3))
    base = build_base("alice", shapes, ModelConfig(2, (3,)), 1)
    step = BaseStep(base, "adam", 0.01)
    state = ModelState("digest", step.state_variables, step.optimizer.variables)
    arrays = state.arrays()
    old = {k: v for k, v in arrays.items() if "/embedding/" not in k}
    old["model/alice_base/field_0/embeddings"] = np.zeros((4, 2), np.float32)
    before = base.embedding.field_rows("a")
    with pytest.raises(CheckpointMismatchError, match="field_0/embeddings"):
        state.load(old, "old.npz")
    np.testing.assert_array_equal(base.embedding.field_rows("a"), before)
    batch = PackedBatch(np.array([[1, 2]], np.int32), np.zeros((1, 0), np.float32))
    assert step.forward(batch).shape == (1, base.output_spec.width)
