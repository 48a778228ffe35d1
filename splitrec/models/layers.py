"""Layers that every model family builds from: the party's field embeddings
(``splitrec.models.embedding``) and dense stacks."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from splitrec.common.seeds import derive_seed
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.determinism import ordered_sum
from splitrec.models.embedding import Embedded, PartyEmbedding


def fit_numeric(base: keras.Model, numeric: np.ndarray) -> None:
    """Sets the scaling of every numeric field of ``base`` from ``numeric``, the
    packed numeric matrix of the party's training rows (families without
    fields, such as a user's own model, take the numbers as they are)."""
    embedding = getattr(base, "embedding", None)
    if isinstance(embedding, PartyEmbedding):
        embedding.fit(numeric)


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


def logit_layer(seed: int) -> keras.layers.Dense:
    """The last layer of a fuse: one logit, with a bias."""
    return keras.layers.Dense(
        1,
        kernel_initializer=keras.initializers.GlorotUniform(
            seed=derive_seed(seed, "out")
        ),
        name="logit",
    )


def run_stack(layers: Sequence[keras.layers.Layer], value: tf.Tensor) -> tf.Tensor:
    for layer in layers:
        value = layer(value)
    return value


def aggregate(hiddens: Sequence[tf.Tensor], aggregation: str) -> list[tf.Tensor]:
    """A fuse's inputs from the base outputs (in the job's order): the outputs
    themselves (``concat``), or one tensor, their sum or mean (see
    ``splitrec.models.api.AGGREGATIONS``)."""
    if aggregation == "concat":
        return list(hiddens)
    total = ordered_sum(list(hiddens))
    if aggregation == "average":
        total = total / float(len(hiddens))
    return [total]


def split_parts(hidden: tf.Tensor, spec: OutputSpec) -> dict[str, tf.Tensor]:
    """A base output cut into its named parts (see ``OutputSpec``)."""
    pieces = tf.split(hidden, [size for _, size in spec.parts], axis=1)
    return {name: piece for (name, _), piece in zip(spec.parts, pieces, strict=True)}


class NoBase(keras.Model):
    """The base of a label party that holds labels alone: no features, no
    variables, an output of width 0 that the fuse leaves out."""

    def __init__(self, shapes: Sequence, output: OutputSpec, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        self.output_spec = output

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.zeros([0, 0], tf.float32)


class FieldsBase(keras.Model):
    """A base over the party's fields: their embeddings in one table (with
    first-order weights unless ``FIRST_ORDER`` is False, see
    ``PartyEmbedding``) and a dense stack. Families say what it outputs in
    ``call``."""

    FIRST_ORDER = True

    def __init__(
        self,
        shapes: Sequence,
        model: ModelConfig,
        output: OutputSpec,
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        self.output_spec = output
        self.embedding = PartyEmbedding(
            self.shapes,
            model.embedding_dim,
            seed,
            self.FIRST_ORDER,
            name="embedding",
        )
        self.deep = dense_stack(model.deep_units, derive_seed(seed, "deep"), "deep")

    def embedded(self, inputs: dict[str, tf.Tensor]) -> list[Embedded]:
        """Each field's ``(Σv, Σ‖v‖², Σw)`` (see ``PartyEmbedding``)."""
        return self.embedding(inputs)


class Fuse(keras.Model):
    """What every family's fuse keeps: the base outputs' specs it takes (in the
    job's order) and how it combines them (``model.aggregation``). A family
    creates its layers in ``make_layers``."""

    def __init__(
        self,
        specs: Sequence[OutputSpec],
        model: ModelConfig,
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.specs = tuple(specs)
        self.aggregation = model.aggregation
        self.make_layers(model, seed)

    def make_layers(self, model: ModelConfig, seed: int) -> None:
        raise NotImplementedError


class StackFuse(Fuse):
    """A fuse with a dense stack (``fuse_units``) and a logit layer. Families
    say what goes into the stack and what is added to its logit in ``call``."""

    def make_layers(self, model: ModelConfig, seed: int) -> None:
        self.deep = dense_stack(model.fuse_units, derive_seed(seed, "deep"), "fuse")
        self.logit = logit_layer(seed)
