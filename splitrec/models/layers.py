"""Layers that every model family builds from: field embeddings and dense stacks."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from splitrec.common.seeds import derive_seed
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.determinism import ordered_sum
from splitrec.models.features import INDEX, NUMERIC, SEQUENCE

_EMBEDDING_SCALE = 0.05


class FieldEmbedding(keras.layers.Layer):
    """One field's embedding ``v`` and, optionally, its first-order weight ``w``.

    Index features look rows up; multi-hot features add the rows of their active
    values, sequences those of their tokens; a number scales its row (and a
    missing indicator its own) by the value, after scaling the value by
    statistics of the training rows (``fit``, kept in non-trainable variables).
    Returns ``(Σv [B,k], Σ‖v‖² [B,1], Σw [B,1] or None)`` over the field's
    values. A field that ``shares`` another field's tables (a sequence of the
    same items as an index feature) has no variables of its own.
    """

    def __init__(
        self,
        size: int,
        encoding: str,
        embedding_dim: int,
        seed: int,
        first_order: bool = True,
        shares: FieldEmbedding | None = None,
        scale: str = "",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.size = size
        self.encoding = encoding
        self.scale = scale
        self.embedding_dim = embedding_dim
        self.seed = seed
        self.with_first_order = first_order
        # Held in a closure, so that the owner's variables are not tracked twice.
        self._owner = (lambda: shares) if shares is not None else None

    def build(self, input_shape: object) -> None:
        if self._owner is not None:
            owner = self._owner()
            if not owner.built:
                raise RuntimeError(
                    f"{self.name} shares the tables of {owner.name}: call that "
                    "field first (see owners_first)"
                )
            self.embeddings, self.first_order = owner.embeddings, owner.first_order
            return
        init = keras.initializers.RandomUniform
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.size, self.embedding_dim),
            initializer=init(-_EMBEDDING_SCALE, _EMBEDDING_SCALE, seed=self.seed),
        )
        if self.encoding == NUMERIC:  # value' = (value - center) / spread
            self.center = self.add_weight(
                name="center", shape=(1,), initializer="zeros", trainable=False
            )
            self.spread = self.add_weight(
                name="spread", shape=(1,), initializer="ones", trainable=False
            )
        self.first_order = None
        if self.with_first_order:
            self.first_order = self.add_weight(
                name="first_order",
                shape=(self.size, 1),
                initializer=init(
                    -_EMBEDDING_SCALE, _EMBEDDING_SCALE, seed=self.seed + 1
                ),
            )

    def call(self, values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
        if self.encoding == SEQUENCE:
            present = tf.cast(values >= 0, tf.float32)[..., None]
            ids = tf.maximum(values, 0)
            vectors = tf.gather(self.embeddings, ids) * present
            squares = tf.reduce_sum(tf.square(vectors), axis=[1, 2])[:, None]
            first = None
            if self.first_order is not None:
                first = tf.reduce_sum(tf.gather(self.first_order, ids) * present, 1)
            return tf.reduce_sum(vectors, axis=1), squares, first
        if self.encoding == NUMERIC:
            scaled = (values[:, :1] - self.center) / self.spread
            values = tf.concat([scaled, values[:, 1:]], axis=1)
        if self.encoding == INDEX:
            vectors = tf.gather(self.embeddings, values)
            squares = tf.reduce_sum(tf.square(vectors), axis=1, keepdims=True)
            first = None
            if self.first_order is not None:
                first = tf.gather(self.first_order, values)
            return vectors, squares, first
        norms = tf.reduce_sum(tf.square(self.embeddings), axis=1, keepdims=True)
        vectors = tf.matmul(values, self.embeddings)
        squares = tf.matmul(tf.square(values), norms)
        first = None
        if self.first_order is not None:
            first = tf.matmul(values, self.first_order)
        return vectors, squares, first

    def fit(self, values: np.ndarray) -> None:
        """A numeric field's scaling from its training rows' values: their mean
        and standard deviation (``standard``), minimum and range (``minmax``),
        or none; a spread of 0 counts as 1."""
        if self.scale == "standard":
            center, spread = float(np.mean(values)), float(np.std(values))
        elif self.scale == "minmax":
            center, spread = float(np.min(values)), float(np.ptp(values))
        else:
            center, spread = 0.0, 1.0
        self.center.assign([center])
        self.spread.assign([spread or 1.0])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            size=self.size,
            encoding=self.encoding,
            embedding_dim=self.embedding_dim,
            seed=self.seed,
            first_order=self.with_first_order,
            scale=self.scale,
        )
        return config


def field_embeddings(
    shapes: Sequence, embedding_dim: int, seed: int, first_order: bool = True
) -> list[FieldEmbedding]:
    """One ``FieldEmbedding`` per feature shape, each seeded by its name and named
    by its position (``field_0``, ...), so that variable paths are the same in
    every process; a sequence that shares another field's table uses that
    field's."""
    fields: dict[str, FieldEmbedding] = {}
    for i in owners_first(shapes):
        s = shapes[i]
        fields[s.name] = FieldEmbedding(
            s.size,
            s.encoding,
            embedding_dim,
            derive_seed(seed, s.name),
            first_order,
            shares=fields[s.shares] if s.shares else None,
            scale=s.scale,
            name=f"field_{i}",
        )
    return [fields[s.name] for s in shapes]


def fit_numeric(base: keras.Model, numeric: np.ndarray) -> None:
    """Sets the scaling of every numeric field of ``base`` from ``numeric``, the
    packed numeric matrix of the party's training rows (families without
    fields, such as a user's own model, take the numbers as they are)."""
    fields = getattr(base, "fields", None)
    if fields is None:
        return
    column = 0
    for field, shape in zip(fields, base.shapes, strict=True):
        if shape.encoding == NUMERIC:
            if numeric.shape[0] == 0:
                raise ValueError("no training rows to scale numeric features by")
            field.fit(numeric[:, column].astype(np.float64))
        column += shape.numeric_columns


def owners_first(shapes: Sequence) -> list[int]:
    """Positions of ``shapes`` in the order their fields must first be called:
    a field whose tables another shares before the one that shares them (each
    field's variables then live under its own name)."""
    return sorted(range(len(shapes)), key=lambda i: bool(shapes[i].shares))


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
    """A base over the party's fields: one embedding per field (with first-order
    weights unless ``FIRST_ORDER`` is False) and a dense stack. Families say
    what it outputs in ``call``."""

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
        self.fields = field_embeddings(
            self.shapes, model.embedding_dim, seed, self.FIRST_ORDER
        )
        self.deep = dense_stack(model.deep_units, derive_seed(seed, "deep"), "deep")

    def embedded(
        self, inputs: dict[str, tf.Tensor]
    ) -> list[tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]]:
        """Each field's ``(Σv, Σ‖v‖², Σw)`` (see ``FieldEmbedding``)."""
        found = {}
        for i in owners_first(self.shapes):
            found[i] = self.fields[i](inputs[self.shapes[i].name])
        return [found[i] for i in range(len(self.shapes))]


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
