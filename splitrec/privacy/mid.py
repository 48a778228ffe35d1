"""MID, the mutual information defense (Zou et al. 2023, "Mutual Information
Regularization for Vertical Federated Learning"): a variational information
bottleneck on what a feature party sends.

The feature party's hidden tensor ``h`` goes through an encoder to the mean and
log-variance of a Gaussian over a small code ``z`` (``dim`` wide), a code is
sampled, ``z = μ + σ·ε`` with ``ε ~ N(0, I)``, and a decoder maps it back to the
tensor's width, which is what leaves the party. Training adds ``weight`` times
``KL(N(μ, σ²) ‖ N(0, I))`` (averaged over the batch's rows) to what the base
minimizes: a bound on the information the code keeps about the party's inputs.
The larger the weight, the less of the party's columns the label party can read
back from the tensors it receives, at a cost in accuracy.

The bottleneck runs at the feature party, so the label party only ever sees
decoded codes. The noise ``ε`` of a training step is drawn from the job seed
and the step (the same for the forward and for the backward that recomputes
it, and again after a restart); evaluation, prediction and serving pass
``ε = 0``: the code's mean.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from splitrec.common.seeds import derive_seed

# The log-variance is kept in this range: exp() of it stays finite in float32
# however far an update pushes the encoder.
_LOG_VAR_LIMIT = 20.0
# Where the log-variance starts (σ ≈ 0.05): the code starts nearly
# deterministic, so the model learns from it from the first step, and the KL
# term widens it as far as its weight makes worth it. Starting at σ = 1 drowns
# the code in noise that a short job never learns its way out of.
INITIAL_LOG_VAR = -6.0


def _encoder_bias(dim: int) -> keras.initializers.Initializer:
    """The encoder's bias: 0 for the means, ``INITIAL_LOG_VAR`` for the
    log-variances."""

    class _Bias(keras.initializers.Initializer):
        def __call__(self, shape: Any, dtype: Any = None) -> tf.Tensor:
            values = tf.concat(
                [tf.zeros([dim]), tf.fill([dim], INITIAL_LOG_VAR)], axis=0
            )
            return tf.cast(values, dtype or "float32")

    return _Bias()


@keras.saving.register_keras_serializable(package="splitrec", name="Bottleneck")
class Bottleneck(keras.layers.Layer):
    """Encoder to ``(μ, log σ²)`` of a ``dim``-wide code, decoder back to ``width``."""

    def __init__(self, width: int, dim: int, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width = int(width)
        self.dim = int(dim)
        self.seed = int(seed)
        self.encoder = keras.layers.Dense(
            2 * self.dim,
            kernel_initializer=keras.initializers.GlorotUniform(
                seed=derive_seed(self.seed, "encoder")
            ),
            bias_initializer=_encoder_bias(self.dim),
            name="encoder",
        )
        self.decoder = keras.layers.Dense(
            self.width,
            kernel_initializer=keras.initializers.GlorotUniform(
                seed=derive_seed(self.seed, "decoder")
            ),
            name="decoder",
        )

    def build(self, input_shape: Any = None) -> None:
        self.encoder.build((None, self.width))
        self.decoder.build((None, self.dim))
        self.built = True

    def moments(self, hidden: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The code's mean and log-variance for each row of ``hidden``."""
        encoded = self.encoder(hidden)
        mean = encoded[:, : self.dim]
        log_var = tf.clip_by_value(
            encoded[:, self.dim :], -_LOG_VAR_LIMIT, _LOG_VAR_LIMIT
        )
        return mean, log_var

    def call(self, hidden: tf.Tensor, noise: tf.Tensor | None = None) -> tf.Tensor:
        """The decoded code: sampled with ``noise`` (standard normal, one row
        per row of ``hidden``), its mean without."""
        mean, log_var = self.moments(hidden)
        code = mean if noise is None else mean + tf.exp(0.5 * log_var) * noise
        return self.decoder(code)

    def kl(self, hidden: tf.Tensor) -> tf.Tensor:
        """``KL(N(μ, σ²) ‖ N(0, I))`` averaged over the rows of ``hidden``."""
        mean, log_var = self.moments(hidden)
        return kl_to_standard_normal(mean, log_var)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "width": self.width,
            "dim": self.dim,
            "seed": self.seed,
        }


def kl_to_standard_normal(mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """``KL(N(mean, exp(log_var)) ‖ N(0, I))`` of each row, averaged over rows."""
    per_row = 0.5 * tf.reduce_sum(
        tf.square(mean) + tf.exp(log_var) - log_var - 1.0, axis=1
    )
    return tf.reduce_mean(per_row)
