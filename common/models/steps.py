"""Compiled training and inference steps for each role, and their centralized twin.

``BaseStep`` runs at every party: forward to the hidden tensor, and the backward
pass from the gradient the label party returns. ``FuseStep`` runs at the label
party: its own base and the fuse model, the loss, and the gradients for each
peer's hidden tensor. ``CentralStep`` trains the same composition in one process.
With equal weights and batches the three make the same updates.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from common.features import INDEX, FeatureShape
from common.models.deepfm import DeepFMBase, DeepFMFuse

_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
}


def make_optimizer(
    name: str, learning_rate: float, variables: Sequence[tf.Variable]
) -> object:
    """A built optimizer (its slots exist before any compiled step runs)."""
    optimizer = _OPTIMIZERS[name](learning_rate=learning_rate)
    optimizer.build(list(variables))
    return optimizer


def input_signature(shapes: Sequence[FeatureShape]) -> dict[str, tf.TensorSpec]:
    """TensorSpecs of a party's encoded inputs with any batch size."""
    return {
        s.name: tf.TensorSpec([None], tf.int32, name=s.name)
        if s.encoding == INDEX
        else tf.TensorSpec([None, s.size], tf.float32, name=s.name)
        for s in shapes
    }


def create_weights(base: DeepFMBase) -> None:
    """Creates the base model's weights by running one empty batch."""
    empty = {
        name: tf.zeros([0, *spec.shape[1:]], spec.dtype)
        for name, spec in input_signature(base.shapes).items()
    }
    base(empty)


def bce_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    )


class BaseStep:
    """A party's base model with its optimizer."""

    def __init__(
        self, base: DeepFMBase, optimizer_name: str, learning_rate: float
    ) -> None:
        create_weights(base)
        self.model = base
        self.variables = list(base.trainable_variables)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, self.variables)
        signature = input_signature(base.shapes)
        width = base.output_spec.width
        self.forward = tf.function(self._forward, input_signature=[signature])
        gradient = tf.TensorSpec([None, width], tf.float32)
        self.backward = tf.function(
            self._backward, input_signature=[signature, gradient]
        )
        self.backward_then_forward = tf.function(
            self._backward_then_forward,
            input_signature=[signature, gradient, signature],
        )

    def _forward(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        return self.model(inputs)

    def _backward(self, inputs: dict[str, tf.Tensor], gradient: tf.Tensor) -> tf.Tensor:
        # The forward pass is recomputed under the tape; with no step in between
        # the weights are those the hidden tensor was computed with.
        with tf.GradientTape() as tape:
            hidden = self.model(inputs)
        grads = tape.gradient(hidden, self.variables, output_gradients=gradient)
        self.optimizer.apply(grads, self.variables)
        return tf.constant(0)

    def _backward_then_forward(
        self,
        inputs: dict[str, tf.Tensor],
        gradient: tf.Tensor,
        next_inputs: dict[str, tf.Tensor],
    ) -> tf.Tensor:
        """One step's update, then the next batch's forward with the new weights.

        One compiled call instead of two: the same result as ``backward`` followed
        by ``forward``.
        """
        with tf.control_dependencies([self._backward(inputs, gradient)]):
            return self.model(next_inputs)


class FuseStep:
    """The label party's base and fuse models with one optimizer over both."""

    def __init__(
        self,
        base: DeepFMBase,
        fuse: DeepFMFuse,
        own_index: int,
        optimizer_name: str,
        learning_rate: float,
    ) -> None:
        create_weights(base)
        self.base = base
        self.fuse = fuse
        self.own_index = own_index
        widths = [s.width for s in fuse.specs]
        peers = [
            tf.TensorSpec([None, w], tf.float32)
            for i, w in enumerate(widths)
            if i != own_index
        ]
        fuse([tf.zeros([0, w]) for w in widths])
        self.variables = list(base.trainable_variables) + list(fuse.trainable_variables)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, self.variables)
        signature = input_signature(base.shapes)
        labels = tf.TensorSpec([None], tf.float32)
        self.train = tf.function(
            self._train, input_signature=[signature, peers, labels]
        )
        self.predict = tf.function(self._predict, input_signature=[signature, peers])

    def _logits(
        self, inputs: dict[str, tf.Tensor], peer_hiddens: Sequence[tf.Tensor]
    ) -> tf.Tensor:
        hiddens = list(peer_hiddens)
        hiddens.insert(self.own_index, self.base(inputs))
        return tf.squeeze(self.fuse(hiddens), axis=1)

    def _train(
        self,
        inputs: dict[str, tf.Tensor],
        peer_hiddens: list[tf.Tensor],
        labels: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch(peer_hiddens)
            logits = self._logits(inputs, peer_hiddens)
            loss = bce_loss(labels, logits)
        grads = tape.gradient(loss, [self.variables, peer_hiddens])
        self.optimizer.apply(grads[0], self.variables)
        return loss, tf.sigmoid(logits), grads[1]

    def _predict(
        self, inputs: dict[str, tf.Tensor], peer_hiddens: list[tf.Tensor]
    ) -> tf.Tensor:
        return tf.sigmoid(self._logits(inputs, peer_hiddens))


class CentralStep:
    """All bases and the fuse composed in one model: the centralized baseline."""

    def __init__(
        self,
        bases: Sequence[DeepFMBase],
        fuse: DeepFMFuse,
        optimizer_name: str,
        learning_rate: float,
    ) -> None:
        for base in bases:
            create_weights(base)
        self.bases = list(bases)
        self.fuse = fuse
        fuse([tf.zeros([0, s.width]) for s in fuse.specs])
        self.variables = [v for b in self.bases for v in b.trainable_variables]
        self.variables += list(fuse.trainable_variables)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, self.variables)
        signatures = [input_signature(b.shapes) for b in self.bases]
        labels = tf.TensorSpec([None], tf.float32)
        self.train = tf.function(self._train, input_signature=[signatures, labels])
        self.predict = tf.function(self._predict, input_signature=[signatures])

    def _logits(self, inputs: list[dict[str, tf.Tensor]]) -> tf.Tensor:
        hiddens = [base(x) for base, x in zip(self.bases, inputs, strict=True)]
        return tf.squeeze(self.fuse(hiddens), axis=1)

    def _train(
        self, inputs: list[dict[str, tf.Tensor]], labels: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = self._logits(inputs)
            loss = bce_loss(labels, logits)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply(grads, self.variables)
        return loss, tf.sigmoid(logits)

    def _predict(self, inputs: list[dict[str, tf.Tensor]]) -> tf.Tensor:
        return tf.sigmoid(self._logits(inputs))


def weights_of(models: Sequence[keras.Model]) -> list[np.ndarray]:
    """Every trainable weight of the models, in order, as arrays."""
    return [v.numpy() for m in models for v in m.trainable_variables]
