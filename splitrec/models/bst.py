"""The behaviour-sequence transformer (BST) split across parties.

A BST base reads a sequence feature (a user's recent items, most recent last)
together with the index feature whose embedding table it shares (the target
item): the items and the target, each with an embedding of its position, run
through transformer blocks (multi-head self-attention that ignores positions
without an item, a residual and layer norm, a feed-forward layer, a residual
and layer norm); the result, flattened, joins the embeddings of the party's
other features in a dense stack. A party without such a sequence gives its
base another family (a DNN, say): the BST fuse takes any base's output.

Its fuse is the DNN's: every base output taken whole (or summed, averaged).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from splitrec.common.errors import ConfigError
from splitrec.common.seeds import derive_seed
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.dnn import DnnFuse
from splitrec.models.features import SEQUENCE, FeatureShape
from splitrec.models.layers import FieldsBase, run_stack

# Added to the attention scores of positions without an item.
_MASKED = -1e9


def _dense(
    units: int, seed: int, name: str, activation: str | None = None
) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name=name,
    )


class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention over ``[B, T, d]`` with a mask of the
    positions that hold an item (``[B, T]``, 1.0 or 0.0)."""

    def __init__(self, dim: int, heads: int, seed: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.dim, self.heads = dim, heads
        self.query = _dense(dim, derive_seed(seed, "query"), "query")
        self.key = _dense(dim, derive_seed(seed, "key"), "key")
        self.value = _dense(dim, derive_seed(seed, "value"), "value")
        self.out = _dense(dim, derive_seed(seed, "out"), "out")

    def _heads(self, x: tf.Tensor) -> tf.Tensor:
        """``[B, T, d]`` → ``[B, heads, T, d / heads]``."""
        batch, steps = tf.shape(x)[0], tf.shape(x)[1]
        split = tf.reshape(x, [batch, steps, self.heads, self.dim // self.heads])
        return tf.transpose(split, [0, 2, 1, 3])

    def call(self, x: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        q, k, v = (self._heads(f(x)) for f in (self.query, self.key, self.value))
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.dim // self.heads)
        scores += (1.0 - present[:, None, None, :]) * _MASKED
        mixed = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        batch, steps = tf.shape(x)[0], tf.shape(x)[1]
        joined = tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [batch, steps, self.dim])
        return self.out(joined)


class TransformerBlock(keras.layers.Layer):
    """Self-attention and a feed-forward layer, each with a residual and layer
    norm."""

    def __init__(self, dim: int, heads: int, seed: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.attention = SelfAttention(dim, heads, seed, name="attention")
        self.norm_1 = keras.layers.LayerNormalization(name="norm_1")
        self.hidden = _dense(2 * dim, derive_seed(seed, "ffn_1"), "ffn_1", "relu")
        self.back = _dense(dim, derive_seed(seed, "ffn_2"), "ffn_2")
        self.norm_2 = keras.layers.LayerNormalization(name="norm_2")

    def call(self, x: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        x = self.norm_1(x + self.attention(x, present))
        return self.norm_2(x + self.back(self.hidden(x)))


class Positions(keras.layers.Layer):
    """A learned embedding per sequence position, added to the items'."""

    def __init__(self, steps: int, dim: int, seed: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.steps, self.dim, self.seed = steps, dim, seed

    def build(self, input_shape: object) -> None:
        self.table = self.add_weight(
            name="embeddings",
            shape=(self.steps, self.dim),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=self.seed),
        )

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x + self.table


def history_of(shapes: tuple[FeatureShape, ...]) -> tuple[int, int] | None:
    """Positions of the first sequence that shares an index feature's table and
    of that feature (the target item); None when there is none."""
    names = [s.name for s in shapes]
    for i, shape in enumerate(shapes):
        if shape.encoding == SEQUENCE and shape.shares in names:
            return i, names.index(shape.shares)
    return None


class BstBase(FieldsBase):
    """A party's bottom model: the transformer over its history and target item,
    and its other features' embeddings, through a dense stack."""

    FIRST_ORDER = False

    def __init__(
        self,
        shapes: tuple[FeatureShape, ...],
        model: ModelConfig,
        output: OutputSpec,
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(shapes, model, output, seed, **kwargs)
        found = history_of(self.shapes)
        if found is None:
            raise ConfigError(
                "model family bst needs a sequence feature that shares the "
                "embedding table of an index feature (a history of items and the "
                "target item, e.g. type: sequence, shares: MovieID); this party's "
                f"features: {[(s.name, s.encoding) for s in self.shapes]}"
            )
        self.history, self.target = found
        steps = self.shapes[self.history].length + 1
        self.positions = Positions(
            steps, model.embedding_dim, derive_seed(seed, "positions"), name="positions"
        )
        self.blocks = [
            TransformerBlock(
                model.embedding_dim,
                model.attention_heads,
                derive_seed(seed, "block", str(i)),
                name=f"block_{i}",
            )
            for i in range(model.transformer_blocks)
        ]

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        embedded = self.embedded(inputs)
        history, target = self.shapes[self.history], self.shapes[self.target]
        items = tf.concat([inputs[history.name], inputs[target.name][:, None]], axis=1)
        present = tf.cast(items >= 0, tf.float32)
        x = self.positions(self.embedding.lookup(target.name, tf.maximum(items, 0)))
        x *= present[..., None]
        for block in self.blocks:
            x = block(x, present)
        x *= present[..., None]
        steps = (history.length + 1) * self.embedding.embedding_dim
        others = [
            e[0] for i, e in enumerate(embedded) if i not in (self.history, self.target)
        ]
        flat = tf.reshape(x, [-1, steps])
        return run_stack(self.deep, tf.concat([flat, *others], axis=1))


BASE, FUSE = BstBase, DnnFuse
