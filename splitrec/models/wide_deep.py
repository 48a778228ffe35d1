"""Wide & Deep split across parties.

Each party's base outputs ``[deep | Σw]``: a dense stack over its fields'
embeddings, and the wide part, a linear model over its fields (one weight per
value, as DeepFM's first-order term). The fuse computes

    logit = b + Σ_p Σw_p + deep(concat_p deep_p)
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from splitrec.models.determinism import ordered_sum
from splitrec.models.layers import FieldsBase, StackFuse, run_stack, split_parts


class WideDeepBase(FieldsBase):
    """A party's bottom model: its fields to ``[deep | Σw]``."""

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = self.embedded(inputs)
        deep = run_stack(self.deep, tf.concat([p[0] for p in parts], axis=1))
        return tf.concat([deep, ordered_sum([p[2] for p in parts])], axis=1)


class WideDeepFuse(StackFuse):
    """The label party's top model: the wide parts summed, the deep parts stacked."""

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        parts = [
            split_parts(hidden, spec)
            for hidden, spec in zip(hiddens, self.specs, strict=True)
        ]
        deep = run_stack(self.deep, tf.concat([p["deep"] for p in parts], axis=1))
        return ordered_sum([p["first_order"] for p in parts]) + self.logit(deep)


BASE, FUSE = WideDeepBase, WideDeepFuse
