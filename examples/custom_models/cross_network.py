"""A worked example of a model written by its user (``family: custom``): a
small cross network (DCN) as a party's base, and a two-layer fuse.

Point a party config at it:

    model:
      family: custom
      code: ../examples/custom_models     # relative to the config file
      base: "cross_network:build_base"
      output_width: 16
      fuse: "cross_network:build_fuse"    # the label party only

Every initializer is seeded from ``seed``, so that a split job and its
centralized twin start from the same weights.
"""

from __future__ import annotations

import keras

EMBEDDING = 8
CROSS_LAYERS = 2


class Cross(keras.layers.Layer):
    """One cross layer: ``x0 * (x · w) + b + x``."""

    def __init__(self, seed: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape: tuple) -> None:
        width = input_shape[0][-1]
        self.w = self.add_weight(
            name="w",
            shape=(width, 1),
            initializer=keras.initializers.GlorotUniform(seed=self.seed),
        )
        self.b = self.add_weight(name="b", shape=(width,), initializer="zeros")

    def call(self, inputs: tuple) -> object:
        x0, x = inputs
        return x0 * keras.ops.matmul(x, self.w) + self.b + x


def build_base(inputs: list, width: int, seed: int) -> keras.Model:
    """Embeds each feature (``index``: a lookup; ``multi_hot``: a linear map),
    crosses the concatenation, and projects it to ``width`` columns."""
    tensors, parts = {}, []
    for i, feature in enumerate(inputs):
        init = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed + i)
        if feature.encoding == "sequence":
            raise ValueError(
                f"feature {feature.name!r} is a sequence; this example takes index "
                "and multi_hot features only"
            )
        if feature.encoding == "index":
            tensor = keras.Input(shape=(), dtype="int32", name=feature.name)
            part = keras.layers.Embedding(
                feature.size, EMBEDDING, embeddings_initializer=init
            )(tensor)
        else:
            tensor = keras.Input(shape=(feature.size,), name=feature.name)
            part = keras.layers.Dense(
                EMBEDDING, use_bias=False, kernel_initializer=init
            )(tensor)
        tensors[feature.name] = tensor
        parts.append(part)
    x0 = keras.layers.Concatenate()(parts) if len(parts) > 1 else parts[0]
    x = x0
    for layer in range(CROSS_LAYERS):
        x = Cross(seed + 100 + layer)((x0, x))
    out = keras.layers.Dense(
        width,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 200),
    )(x)
    return keras.Model(tensors, out)


def build_fuse(widths: list, seed: int) -> keras.Model:
    """Every party's output, concatenated, through one hidden layer to a logit."""
    hiddens = [keras.Input(shape=(w,)) for w in widths]
    x = keras.layers.Concatenate()(hiddens) if len(hiddens) > 1 else hiddens[0]
    x = keras.layers.Dense(
        16,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
    )(x)
    logit = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1)
    )(x)
    return keras.Model(hiddens, logit)
