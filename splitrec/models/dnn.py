"""A plain deep network split across parties.

Each party's base embeds its fields and runs a dense stack over their
concatenation; the fuse concatenates every party's output whole and runs its own
dense stack to one logit. Its fuse takes the output of any family's base, side
by side or (``model.aggregation``) as their sum or mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from splitrec.models.layers import FieldsBase, StackFuse, aggregate, run_stack


class DnnBase(FieldsBase):
    """A party's bottom model: its fields' embeddings through a dense stack."""

    FIRST_ORDER = False

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        vectors = [p[0] for p in self.embedded(inputs)]
        return run_stack(self.deep, tf.concat(vectors, axis=1))


class DnnFuse(StackFuse):
    """The label party's top model: every base output, aggregated, to a logit."""

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        inputs = aggregate(hiddens, self.aggregation)
        return self.logit(run_stack(self.deep, tf.concat(inputs, axis=1)))


BASE, FUSE = DnnBase, DnnFuse
