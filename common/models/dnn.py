"""A plain deep network split across parties.

Each party's base embeds its fields and runs a dense stack over their
concatenation; the fuse concatenates every party's output whole and runs its own
dense stack to one logit. Its fuse takes the output of any family's base.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from common.config import ModelConfig
from common.features import FeatureShape
from common.jobspec import OutputSpec
from common.models.layers import dense_stack, field_embeddings, logit_layer, run_stack
from common.seeds import derive_seed


class DnnBase(keras.Model):
    """A party's bottom model: its fields' embeddings through a dense stack."""

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
        self.fields = field_embeddings(
            self.shapes, model.embedding_dim, seed, first_order=False
        )
        self.deep = dense_stack(model.deep_units, derive_seed(seed, "deep"), "deep")

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        vectors = [
            field(inputs[s.name])[0]
            for field, s in zip(self.fields, self.shapes, strict=True)
        ]
        return run_stack(self.deep, tf.concat(vectors, axis=1))


class DnnFuse(keras.Model):
    """The label party's top model: every base output, concatenated, to a logit."""

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
        return self.logit(run_stack(self.deep, tf.concat(list(hiddens), axis=1)))


def build_base(
    shapes: Sequence[FeatureShape],
    model: ModelConfig,
    output: OutputSpec,
    seed: int,
    name: str,
) -> DnnBase:
    return DnnBase(shapes, model, output, seed, name=name)


def build_fuse(
    specs: Sequence[OutputSpec], model: ModelConfig, seed: int, name: str
) -> DnnFuse:
    return DnnFuse(specs, model, seed, name=name)
