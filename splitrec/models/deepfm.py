"""DeepFM split exactly across parties.

Each party's base model embeds its own fields and outputs, per row,
``[deep | Σv | Σ‖v‖² | Σw]``. The fuse model adds the parties' parts and computes

    logit = b + Σ_p Σw_p + ½(‖Σ_p Σv_p‖² − Σ_p Σ‖v‖²_p) + deep(concat_p deep_p)

which is the DeepFM logit over all parties' fields, FM term included.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from splitrec.models.determinism import ordered_sum
from splitrec.models.layers import FieldsBase, StackFuse, run_stack, split_parts


class DeepFMBase(FieldsBase):
    """A party's bottom model: its fields to ``[deep | Σv | Σ‖v‖² | Σw]``."""

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = self.embedded(inputs)
        vectors = [p[0] for p in parts]
        deep = run_stack(self.deep, tf.concat(vectors, axis=1))
        embedding_sum = ordered_sum(vectors)
        square_sum = ordered_sum([p[1] for p in parts])
        first_order = ordered_sum([p[2] for p in parts])
        return tf.concat([deep, embedding_sum, square_sum, first_order], axis=1)


class DeepFMFuse(StackFuse):
    """The label party's top model: every party's base output to one logit."""

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        parts = [
            split_parts(hidden, spec)
            for hidden, spec in zip(hiddens, self.specs, strict=True)
        ]
        total = ordered_sum([p["embedding_sum"] for p in parts])
        fm = 0.5 * (
            tf.reduce_sum(tf.square(total), axis=1, keepdims=True)
            - ordered_sum([p["square_sum"] for p in parts])
        )
        deep = run_stack(self.deep, tf.concat([p["deep"] for p in parts], axis=1))
        return ordered_sum([p["first_order"] for p in parts]) + fm + self.logit(deep)


BASE, FUSE = DeepFMBase, DeepFMFuse
