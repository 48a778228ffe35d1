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
from common.models.registry import FAMILIES
from common.seeds import derive_seed


class DeepFMBase(keras.Model):
    """A party's bottom model: its fields to ``[deep | Σv | Σ‖v‖² | Σw]``."""

    def __init__(
        self,
        shapes: Sequence[FeatureShape],
        embedding_dim: int,
        deep_units: Sequence[int],
        seed: int,
        output: OutputSpec | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        self.output_spec = output or OutputSpec(
            "deepfm",
            FAMILIES["deepfm"].parts(
                ModelConfig(embedding_dim=embedding_dim, deep_units=tuple(deep_units))
            ),
        )
        self.fields = field_embeddings(self.shapes, embedding_dim, seed)
        self.deep = dense_stack(deep_units, derive_seed(seed, "deep"), "deep")

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = [
            field(inputs[s.name])
            for field, s in zip(self.fields, self.shapes, strict=True)
        ]
        vectors = [p[0] for p in parts]
        deep = run_stack(self.deep, tf.concat(vectors, axis=1))
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
        self.deep = dense_stack(fuse_units, derive_seed(seed, "deep"), "fuse")
        self.logit = logit_layer(seed)

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        parts = [
            split_parts(hidden, spec)
            for hidden, spec in zip(hiddens, self.specs, strict=True)
        ]
        total = tf.add_n([p["embedding_sum"] for p in parts])
        fm = 0.5 * (
            tf.reduce_sum(tf.square(total), axis=1, keepdims=True)
            - tf.add_n([p["square_sum"] for p in parts])
        )
        deep = run_stack(self.deep, tf.concat([p["deep"] for p in parts], axis=1))
        return tf.add_n([p["first_order"] for p in parts]) + fm + self.logit(deep)


def build_base(
    shapes: Sequence[FeatureShape],
    model: ModelConfig,
    output: OutputSpec,
    seed: int,
    name: str,
) -> DeepFMBase:
    return DeepFMBase(
        shapes, model.embedding_dim, model.deep_units, seed, output=output, name=name
    )


def build_fuse(
    specs: Sequence[OutputSpec], model: ModelConfig, seed: int, name: str
) -> DeepFMFuse:
    return DeepFMFuse(specs, model.fuse_units, seed, name=name)
