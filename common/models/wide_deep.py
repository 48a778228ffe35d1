"""Wide & Deep split across parties.

Each party's base outputs ``[deep | Σw]``: a dense stack over its fields'
embeddings, and the wide part, a linear model over its fields (one weight per
value, as DeepFM's first-order term). The fuse computes

    logit = b + Σ_p Σw_p + deep(concat_p deep_p)
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from common.config import ModelConfig
from common.features import FeatureShape
from common.jobspec import OutputSpec
from common.models.layers import (
    dense_stack,
    field_embeddings,
    logit_layer,
    run_stack,
    split_parts,
)
from common.seeds import derive_seed


class WideDeepBase(keras.Model):
    """A party's bottom model: its fields to ``[deep | Σw]``."""

    def __init__(
        self,
        shapes: Sequence[FeatureShape],
        model: ModelConfig,
        output: OutputSpec,
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        self.output_spec = output
        self.fields = field_embeddings(self.shapes, model.embedding_dim, seed)
        self.deep = dense_stack(model.deep_units, derive_seed(seed, "deep"), "deep")

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = [
            field(inputs[s.name])
            for field, s in zip(self.fields, self.shapes, strict=True)
        ]
        deep = run_stack(self.deep, tf.concat([p[0] for p in parts], axis=1))
        return tf.concat([deep, tf.add_n([p[2] for p in parts])], axis=1)


class WideDeepFuse(keras.Model):
    """The label party's top model: the wide parts summed, the deep parts stacked."""

    def __init__(
        self,
        specs: Sequence[OutputSpec],
        model: ModelConfig,
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.specs = tuple(specs)
        self.deep = dense_stack(model.fuse_units, derive_seed(seed, "deep"), "fuse")
        self.logit = logit_layer(seed)

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        parts = [
            split_parts(hidden, spec)
            for hidden, spec in zip(hiddens, self.specs, strict=True)
        ]
        deep = run_stack(self.deep, tf.concat([p["deep"] for p in parts], axis=1))
        return tf.add_n([p["first_order"] for p in parts]) + self.logit(deep)


def build_base(
    shapes: Sequence[FeatureShape],
    model: ModelConfig,
    output: OutputSpec,
    seed: int,
    name: str,
) -> WideDeepBase:
    return WideDeepBase(shapes, model, output, seed, name=name)


def build_fuse(
    specs: Sequence[OutputSpec], model: ModelConfig, seed: int, name: str
) -> WideDeepFuse:
    return WideDeepFuse(specs, model, seed, name=name)
