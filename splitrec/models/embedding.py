"""One party's field embeddings in one table: every field's rows at its offset.

Each field that owns a table (every field but a sequence that ``shares``
another's) holds ``size`` rows of the party's ``embeddings`` (``[rows, k]``)
and, with first-order weights, of its ``first_order`` (``[rows, 1]``), from
its offset on, in the order of the party's features. The rows start as the
field's own table would: drawn from the field's seed for its own shape, so a
field's numbers do not depend on the other fields.

The index features of a batch are looked up together, with one gather of
each table; a sequence gathers its tokens' rows (from the table it shares);
multi-hot and numeric fields multiply their values by their rows. The sums
over each field are computed as the per-field layers did, field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from splitrec.common.seeds import derive_seed
from splitrec.models.features import INDEX, NUMERIC, SEQUENCE, FeatureShape

_EMBEDDING_SCALE = 0.05

# A field's (Σv [B,k], Σ‖v‖² [B,1], Σw [B,1] or None) over its values.
Embedded = tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]


class FieldRows(keras.initializers.Initializer):
    """The rows of several fields, one block after the other: each block drawn
    uniformly from ``±_EMBEDDING_SCALE`` with its own seed, for its own shape."""

    def __init__(self, blocks: Sequence[tuple[int, int]]) -> None:
        self.blocks = [(int(rows), int(seed)) for rows, seed in blocks]

    def __call__(self, shape: Sequence[int], dtype: object = None) -> tf.Tensor:
        width = int(shape[1])
        drawn = [
            keras.initializers.RandomUniform(
                -_EMBEDDING_SCALE, _EMBEDDING_SCALE, seed=seed
            )((rows, width), dtype=dtype)
            for rows, seed in self.blocks
        ]
        return keras.ops.concatenate(drawn, axis=0)

    def get_config(self) -> dict:
        return {"blocks": [list(b) for b in self.blocks]}


def table_offsets(shapes: Sequence[FeatureShape]) -> dict[str, int]:
    """Each feature's first row in the party's table, by name; a feature that
    shares another's table starts where that one does."""
    offsets: dict[str, int] = {}
    rows = 0
    for shape in shapes:
        if not shape.shares:
            offsets[shape.name] = rows
            rows += shape.size
    for shape in shapes:
        if shape.shares:
            if shape.shares not in offsets:
                raise ValueError(
                    f"feature {shape.name!r} shares the table of {shape.shares!r}, "
                    "which is not a feature of the party with a table of its own"
                )
            offsets[shape.name] = offsets[shape.shares]
    return offsets


class PartyEmbedding(keras.layers.Layer):
    """Every field of a party: ``embeddings`` and (``first_order``) first-order
    weights, one table each (see the module docstring), and for numeric fields
    their scaling (``center``, ``spread``: one entry per numeric field, fitted
    to the training rows, not trained).

    Called on the party's input dict, returns each field's ``(Σv, Σ‖v‖², Σw)``
    in feature order: index features look their row up; multi-hot features add
    the rows of their active values, sequences those of their tokens; a number
    scales its row (and a missing indicator its own) by the value, after
    scaling the value (``fit``).
    """

    def __init__(
        self,
        shapes: Sequence[FeatureShape],
        embedding_dim: int,
        seed: int,
        first_order: bool = True,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        self.embedding_dim = embedding_dim
        self.seed = seed
        self.with_first_order = first_order
        self.offsets = table_offsets(self.shapes)
        self._owners = [s for s in self.shapes if not s.shares]
        self.rows = sum(s.size for s in self._owners)
        self._index = [i for i, s in enumerate(self.shapes) if s.encoding == INDEX]
        numeric = [s.name for s in self.shapes if s.encoding == NUMERIC]
        self._numeric = {name: n for n, name in enumerate(numeric)}

    def field_seed(self, name: str) -> int:
        """The seed a field's rows are drawn from (its first-order rows: + 1)."""
        return derive_seed(self.seed, name)

    def build(self, input_shape: object = None) -> None:
        seeds = [self.field_seed(s.name) for s in self._owners]
        sizes = [s.size for s in self._owners]
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.rows, self.embedding_dim),
            initializer=FieldRows(list(zip(sizes, seeds, strict=True))),
        )
        self.first_order = None
        if self.with_first_order:
            self.first_order = self.add_weight(
                name="first_order",
                shape=(self.rows, 1),
                initializer=FieldRows(
                    [(n, s + 1) for n, s in zip(sizes, seeds, strict=True)]
                ),
            )
        if self._numeric:  # value' = (value - center) / spread
            count = len(self._numeric)
            self.center = self.add_weight(
                name="center", shape=(count,), initializer="zeros", trainable=False
            )
            self.spread = self.add_weight(
                name="spread", shape=(count,), initializer="ones", trainable=False
            )

    def call(self, inputs: Mapping[str, tf.Tensor]) -> list[Embedded]:
        found: list[Embedded | None] = [None] * len(self.shapes)
        if self._index:
            for i, embedded in zip(self._index, self._indexed(inputs), strict=True):
                found[i] = embedded
        for i, shape in enumerate(self.shapes):
            if shape.encoding == SEQUENCE:
                found[i] = self._sequence(shape, inputs[shape.name])
            elif shape.encoding != INDEX:
                found[i] = self._weighted(shape, inputs[shape.name])
        return found

    def _indexed(self, inputs: Mapping[str, tf.Tensor]) -> list[Embedded]:
        """Every index field at once: one gather per table, then each field's
        column."""
        shapes = [self.shapes[i] for i in self._index]
        offsets = tf.constant([self.offsets[s.name] for s in shapes], tf.int32)
        ids = tf.stack([inputs[s.name] for s in shapes], axis=1) + offsets
        count = len(shapes)
        vectors = tf.unstack(tf.gather(self.embeddings, ids), count, axis=1)
        firsts: list = [None] * count
        if self.first_order is not None:
            firsts = tf.unstack(tf.gather(self.first_order, ids), count, axis=1)
        # Each field's squares from its own column, as a table of its own had
        # them: its gradient adds up in the same order.
        return [
            (v, tf.reduce_sum(tf.square(v), axis=1, keepdims=True), w)
            for v, w in zip(vectors, firsts, strict=True)
        ]

    def _sequence(self, shape: FeatureShape, values: tf.Tensor) -> Embedded:
        present = tf.cast(values >= 0, tf.float32)[..., None]
        ids = tf.maximum(values, 0) + self.offsets[shape.name]
        vectors = tf.gather(self.embeddings, ids) * present
        squares = tf.reduce_sum(tf.square(vectors), axis=[1, 2])[:, None]
        first = None
        if self.first_order is not None:
            first = tf.reduce_sum(tf.gather(self.first_order, ids) * present, 1)
        return tf.reduce_sum(vectors, axis=1), squares, first

    def _weighted(self, shape: FeatureShape, values: tf.Tensor) -> Embedded:
        """A multi-hot or numeric field: its values times its rows.

        Its rows are gathered, not sliced: the table's gradient stays a set of
        rows (``IndexedSlices``) whatever fields share the table, and the
        optimizer updates every field's rows as it updated a table of the
        field's own."""
        start = self.offsets[shape.name]
        rows = tf.constant(np.arange(start, start + shape.size, dtype=np.int32))
        table = tf.gather(self.embeddings, rows)
        if shape.encoding == NUMERIC:
            n = self._numeric[shape.name]
            center, spread = self.center[n : n + 1], self.spread[n : n + 1]
            scaled = (values[:, :1] - center) / spread
            values = tf.concat([scaled, values[:, 1:]], axis=1)
        norms = tf.reduce_sum(tf.square(table), axis=1, keepdims=True)
        vectors = tf.matmul(values, table)
        squares = tf.matmul(tf.square(values), norms)
        first = None
        if self.first_order is not None:
            first = tf.matmul(values, tf.gather(self.first_order, rows))
        return vectors, squares, first

    def lookup(self, name: str, ids: tf.Tensor) -> tf.Tensor:
        """The embeddings of ``ids`` (non-negative) in the table of feature
        ``name`` (the table it shares, if it shares one)."""
        return tf.gather(self.embeddings, ids + self.offsets[name])

    def field_rows(self, name: str, first_order: bool = False) -> np.ndarray:
        """The rows of feature ``name``'s table (``first_order``: of its
        first-order weights), as they stand."""
        table = self.first_order if first_order else self.embeddings
        start = self.offsets[name]
        size = next(s.size for s in self.shapes if s.name == name)
        return np.asarray(table[start : start + size])

    def fit(self, numeric: np.ndarray) -> None:
        """Each numeric field's scaling from ``numeric``, the packed numeric
        matrix of the party's training rows: their mean and standard deviation
        (``standard``), minimum and range (``minmax``), or none; a spread of 0
        counts as 1."""
        if not self._numeric:
            return
        if numeric.shape[0] == 0:
            raise ValueError("no training rows to scale numeric features by")
        centers, spreads = np.zeros(len(self._numeric)), np.ones(len(self._numeric))
        column = 0
        for shape in self.shapes:
            if shape.encoding == NUMERIC:
                values = numeric[:, column].astype(np.float64)
                n = self._numeric[shape.name]
                centers[n], spreads[n] = _scaling(shape.scale, values)
            column += shape.numeric_columns
        self.center.assign(centers.astype(np.float32))
        self.spread.assign(spreads.astype(np.float32))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            shapes=[
                [s.name, s.encoding, s.size, s.length, s.shares, s.scale]
                for s in self.shapes
            ],
            embedding_dim=self.embedding_dim,
            seed=self.seed,
            first_order=self.with_first_order,
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> PartyEmbedding:
        config = dict(config)
        config["shapes"] = [FeatureShape(*s) for s in config["shapes"]]
        return cls(**config)


def _scaling(scale: str, values: np.ndarray) -> tuple[float, float]:
    """A numeric field's center and spread (a spread of 0 counts as 1)."""
    if scale == "standard":
        center, spread = float(np.mean(values)), float(np.std(values))
    elif scale == "minmax":
        center, spread = float(np.min(values)), float(np.ptp(values))
    else:
        center, spread = 0.0, 1.0
    return center, spread or 1.0
