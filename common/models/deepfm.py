"""DeepFM split exactly across parties.

Each party's base model embeds its own fields and outputs, per row,
``[deep | Σv | Σ‖v‖² | Σw]``. The fuse model adds the parties' parts and computes

    logit = b + Σ_p Σw_p + ½(‖Σ_p Σv_p‖² − Σ_p Σ‖v‖²_p) + deep(concat_p deep_p)

which is the DeepFM logit over all parties' fields, FM term included.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from common.features import INDEX, FeatureShape
from common.jobspec import OutputSpec
from common.seeds import derive_seed

_EMBEDDING_SCALE = 0.05


class FieldEmbedding(keras.layers.Layer):
    """One field's embedding ``v`` and first-order weight ``w``.

    Index features look rows up; multi-hot features add the rows of their active
    values. Returns ``(Σv [B,k], Σ‖v‖² [B,1], Σw [B,1])`` over the field's values.
    """

    def __init__(
        self, size: int, encoding: str, embedding_dim: int, seed: int, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.size = size
        self.encoding = encoding
        self.embedding_dim = embedding_dim
        self.seed = seed

    def build(self, input_shape: object) -> None:
        init = keras.initializers.RandomUniform
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.size, self.embedding_dim),
            initializer=init(-_EMBEDDING_SCALE, _EMBEDDING_SCALE, seed=self.seed),
        )
        self.first_order = self.add_weight(
            name="first_order",
            shape=(self.size, 1),
            initializer=init(-_EMBEDDING_SCALE, _EMBEDDING_SCALE, seed=self.seed + 1),
        )

    def call(self, values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        if self.encoding == INDEX:
            vectors = tf.gather(self.embeddings, values)
            squares = tf.reduce_sum(tf.square(vectors), axis=1, keepdims=True)
            return vectors, squares, tf.gather(self.first_order, values)
        norms = tf.reduce_sum(tf.square(self.embeddings), axis=1, keepdims=True)
        vectors = tf.matmul(values, self.embeddings)
        squares = tf.matmul(tf.square(values), norms)
        return vectors, squares, tf.matmul(values, self.first_order)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            size=self.size,
            encoding=self.encoding,
            embedding_dim=self.embedding_dim,
            seed=self.seed,
        )
        return config


def dense_stack(units: Sequence[int], seed: int, name: str) -> list[keras.layers.Dense]:
    """ReLU layers with seeded Glorot kernels."""
    return [
        keras.layers.Dense(
            width,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(
                seed=derive_seed(seed, i)
            ),
            name=f"{name}_{i}",
        )
        for i, width in enumerate(units)
    ]


class DeepFMBase(keras.Model):
    """A party's bottom model: its fields to ``[deep | Σv | Σ‖v‖² | Σw]``."""

    def __init__(
        self,
        shapes: Sequence[FeatureShape],
        embedding_dim: int,
        deep_units: Sequence[int],
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        self.output_spec = OutputSpec(deep_units[-1], embedding_dim)
        self.fields = [
            FieldEmbedding(s.size, s.encoding, embedding_dim, derive_seed(seed, s.name))
            for s in self.shapes
        ]
        self.deep = dense_stack(deep_units, derive_seed(seed, "deep"), "deep")

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = [
            field(inputs[s.name])
            for field, s in zip(self.fields, self.shapes, strict=True)
        ]
        vectors = [p[0] for p in parts]
        deep = tf.concat(vectors, axis=1)
        for layer in self.deep:
            deep = layer(deep)
        embedding_sum = tf.add_n(vectors)
        square_sum = tf.add_n([p[1] for p in parts])
        first_order = tf.add_n([p[2] for p in parts])
        return tf.concat([deep, embedding_sum, square_sum, first_order], axis=1)


class DeepFMFuse(keras.Model):
    """The label party's top model: every party's base output to one logit."""

    def __init__(
        self,
        specs: Sequence[OutputSpec],
        fuse_units: Sequence[int],
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.specs = tuple(specs)
        dims = {s.embedding_dim for s in self.specs}
        if len(dims) != 1:
            raise ValueError(
                f"every party needs the same embedding_dim for FM, got {dims}"
            )
        self.deep = dense_stack(fuse_units, derive_seed(seed, "deep"), "fuse")
        self.logit = keras.layers.Dense(
            1,
            kernel_initializer=keras.initializers.GlorotUniform(
                seed=derive_seed(seed, "out")
            ),
            name="logit",
        )

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        deeps, sums, squares, firsts = [], [], [], []
        for hidden, spec in zip(hiddens, self.specs, strict=True):
            deep, vector, square, first = tf.split(
                hidden, [spec.deep_units, spec.embedding_dim, 1, 1], axis=1
            )
            deeps.append(deep)
            sums.append(vector)
            squares.append(square)
            firsts.append(first)
        total = tf.add_n(sums)
        fm = 0.5 * (
            tf.reduce_sum(tf.square(total), axis=1, keepdims=True) - tf.add_n(squares)
        )
        deep = tf.concat(deeps, axis=1)
        for layer in self.deep:
            deep = layer(deep)
        return tf.add_n(firsts) + fm + self.logit(deep)
