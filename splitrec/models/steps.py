"""Compiled training and inference steps for each role, and their centralized twin.

``BaseStep`` runs at every party: forward to the hidden tensor, and the backward
pass from the gradient the label party returns. ``FuseStep`` runs at the label
party: its own base and the fuse model, the loss, and the gradients for each
peer's hidden tensor. ``CentralStep`` trains the same composition in one process.
With equal weights and batches the three make the same updates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf

from splitrec.common.metrics import Task
from splitrec.models import determinism  # noqa: F401  (sets TensorFlow up)
from splitrec.models.features import FeatureShape, PackedBatch, columns_by_feature
from splitrec.models.objective import Objective
from splitrec.models.optimizers import Adam
from splitrec.privacy.mid import Bottleneck
from splitrec.privacy.nopeek import nopeek_penalty

_OPTIMIZERS = {
    "adam": Adam,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
}


def make_optimizer(
    name: str, learning_rate: float, variables: Sequence[tf.Variable]
) -> object:
    """A built optimizer (its slots exist before any compiled step runs).

    Its name is fixed, so that its variables' paths (``optimizer/...``, which
    checkpoints are keyed by) are the same however many were made before."""
    optimizer = _OPTIMIZERS[name](learning_rate=learning_rate, name="optimizer")
    optimizer.build(list(variables))
    return optimizer


class Compiled:
    """A function compiled for one input signature, called as the graph it was
    traced to.

    A ``tf.function`` first looks its trace up by the types of the arguments
    on every call, then runs it; with an input signature there is one trace,
    so after the first call (which traces) this calls that trace directly,
    which skips the look-up (about as long as running a small model's step).
    """

    def __init__(self, function: Callable, signature: Sequence) -> None:
        self._function = tf.function(function, input_signature=list(signature))
        self._traced: Callable | None = None

    def __call__(self, *args: object) -> object:
        if self._traced is None:
            self._traced = self._function.get_concrete_function()
        return self._traced(*args)

    @property
    def graph(self) -> tf.Graph:
        """The traced graph (traced now if it was not)."""
        return self._function.get_concrete_function().graph


Packed = tuple[tf.Tensor, tf.Tensor, tf.Tensor]


def input_signature(
    shapes: Sequence[FeatureShape],
) -> tuple[tf.TensorSpec, tf.TensorSpec, tf.TensorSpec]:
    """Specs of a party's packed inputs (index, multi-hot and numeric matrices),
    any batch."""
    index = sum(s.index_columns for s in shapes)
    dense = sum(s.dense_columns for s in shapes)
    numeric = sum(s.numeric_columns for s in shapes)
    return (
        tf.TensorSpec([None, index], tf.int32, name="indices"),
        tf.TensorSpec([None, dense], tf.float32, name="dense"),
        tf.TensorSpec([None, numeric], tf.float32, name="numeric"),
    )


def unpack(shapes: Sequence[FeatureShape], packed: Packed) -> dict[str, tf.Tensor]:
    """The model's input dict from the packed matrices (see ``PackedBatch``)."""
    return columns_by_feature(shapes, *packed)


def packed(batch: PackedBatch) -> Packed:
    return (batch.indices, batch.dense, batch.numeric)


def create_weights(base: keras.Model) -> None:
    """Creates the base model's weights by running one empty batch."""
    empty = tuple(
        tf.zeros([0, *spec.shape[1:]], spec.dtype)
        for spec in input_signature(base.shapes)
    )
    base(unpack(base.shapes, empty))


def base_hidden(
    base: keras.Model,
    inputs: dict[str, tf.Tensor],
    clip_norm: float = 0.0,
    bottleneck: Bottleneck | None = None,
    noise: tf.Tensor | None = None,
) -> tf.Tensor:
    """A base's hidden tensor from its input dict (what the party sends):
    through MID's ``bottleneck`` when there is one (a sampled code with
    ``noise``, the code's mean without), then with each row clipped to the L2
    norm ``clip_norm`` when it is > 0."""
    return sent_tensor(base(inputs), clip_norm, bottleneck, noise)


def sent_tensor(
    hidden: tf.Tensor,
    clip_norm: float = 0.0,
    bottleneck: Bottleneck | None = None,
    noise: tf.Tensor | None = None,
) -> tf.Tensor:
    """A base's output made what the party sends (see ``base_hidden``)."""
    if bottleneck is not None:
        hidden = bottleneck(hidden, noise)
    if clip_norm > 0:
        hidden = tf.clip_by_norm(hidden, clip_norm, axes=[1])
    return hidden


class Composition(Protocol):
    """What the label party's scores are computed from (see ``FuseStep``)."""

    base: keras.Model
    fuse: keras.Model
    objective: Objective
    own_index: int | None
    summed: bool


def fused_logits(
    parts: Composition,
    inputs: dict[str, tf.Tensor],
    peer_hiddens: Sequence[tf.Tensor],
) -> tf.Tensor:
    """The label party's logits: its own base on ``inputs`` and the peers'
    hidden tensors (one, their sum, when ``summed``) through the fuse."""
    hiddens = list(peer_hiddens)
    own = None
    if parts.own_index is not None:
        own = parts.base(inputs)
    if parts.summed:
        total = hiddens[0] if own is None else own + hiddens[0]
        if parts.fuse.aggregation == "average":
            total = total / float(len(parts.fuse.specs))
        return parts.objective.logits(parts.fuse([total]))
    if own is not None:
        hiddens.insert(parts.own_index, own)
    return parts.objective.logits(parts.fuse(hiddens))


class BaseStep:
    """A party's base model with its optimizer; inputs are ``PackedBatch``es."""

    def __init__(
        self,
        base: keras.Model,
        optimizer_name: str,
        learning_rate: float,
        clip_norm: float = 0.0,
        nopeek: float = 0.0,
        predict: bool = False,
        bottleneck: Bottleneck | None = None,
        mid_weight: float = 0.0,
    ) -> None:
        """``clip_norm`` > 0 clips each row of the hidden tensor to that L2 norm
        inside the model, so the backward pass differentiates through the clip.
        ``nopeek`` > 0 adds that weight times the distance correlation between
        the batch's inputs and its hidden tensor to what the update minimizes
        (see ``splitrec.privacy.nopeek``); at 0 the update is the plain backward
        pass.

        ``predict``: a forward that lacks ``ahead`` updates (a pipeline's stale
        forward) runs on the weights predicted for its step, ``w + ahead·Δ``,
        where ``Δ`` is the last update (kept in ``velocity``). With ``ahead``
        0 it is the plain forward.

        ``bottleneck``: MID (``splitrec.privacy.mid``) between the base and
        what is sent; each update also lowers ``mid_weight`` times its KL
        term. Forwards and backwards then take the code's noise (``noise``): a
        training forward and the backward of the same step are given the
        same."""
        create_weights(base)
        self.model = base
        self._clip_norm = clip_norm
        self._nopeek = nopeek
        self.bottleneck = bottleneck
        self._mid_weight = mid_weight
        self.variables = list(base.trainable_variables)
        if bottleneck is not None:
            bottleneck.build()
            self.variables += list(bottleneck.trainable_variables)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, self.variables)
        self.velocity = (
            [
                keras.Variable(
                    initializer="zeros",
                    shape=v.shape,
                    dtype=v.dtype,
                    trainable=False,
                    name=f"velocity_{index}",
                )
                for index, v in enumerate(self.variables)
            ]
            if predict
            else []
        )
        self.noise_width = 0 if bottleneck is None else bottleneck.dim
        # A batch and its code's noise (no columns without a bottleneck).
        signature = (
            input_signature(base.shapes),
            tf.TensorSpec([None, self.noise_width], tf.float32, name="noise"),
        )
        gradient = tf.TensorSpec([None, base.output_spec.width], tf.float32)
        ahead = tf.TensorSpec([], tf.float32)
        self._forward = Compiled(self._hidden, [signature])
        self._backward = Compiled(self._update, [signature, gradient])
        self._backward_then_forward = Compiled(
            self._update_then_hidden, [signature, gradient, signature]
        )
        if predict:
            self._forward_ahead = Compiled(self._hidden_ahead, [signature, ahead])
            self._backward_then_ahead = Compiled(
                self._update_then_ahead, [signature, gradient, signature, ahead]
            )

    @property
    def state_variables(self) -> list:
        """Every variable of the model, trainable or not (what a checkpoint
        keeps: weights, and the scaling of numeric features), then MID's."""
        found = list(self.model.variables)
        if self.bottleneck is not None:
            found += list(self.bottleneck.variables)
        return found

    def _compiled_inputs(
        self, batch: PackedBatch, noise: np.ndarray | None
    ) -> tuple[Packed, np.ndarray]:
        """A batch and its code's noise as the compiled functions take them;
        no noise is the code's mean (zeros)."""
        if noise is None:
            noise = np.zeros((len(batch.indices), self.noise_width), np.float32)
        return packed(batch), noise

    def forward(
        self, batch: PackedBatch, ahead: int = 0, noise: np.ndarray | None = None
    ) -> tf.Tensor:
        """The hidden tensor; ``ahead`` > 0: of a forward that lacks that many
        updates (on the predicted weights when the step predicts). ``noise``:
        MID's code noise (None: the code's mean, as evaluation takes it)."""
        if ahead and self.velocity:
            return self._forward_ahead(
                self._compiled_inputs(batch, noise), float(ahead)
            )
        return self._forward(self._compiled_inputs(batch, noise))

    def backward(
        self, batch: PackedBatch, gradient: np.ndarray, noise: np.ndarray | None = None
    ) -> None:
        self._backward(self._compiled_inputs(batch, noise), gradient)

    def backward_then_forward(
        self,
        batch: PackedBatch,
        gradient: np.ndarray,
        next_batch: PackedBatch,
        ahead: int = 0,
        noise: np.ndarray | None = None,
        next_noise: np.ndarray | None = None,
    ) -> tf.Tensor:
        """One step's update, then the next batch's forward with the new weights.

        One compiled call instead of two: the same result as ``backward`` followed
        by ``forward``.
        """
        current = self._compiled_inputs(batch, noise)
        following = self._compiled_inputs(next_batch, next_noise)
        if ahead and self.velocity:
            return self._backward_then_ahead(current, gradient, following, float(ahead))
        return self._backward_then_forward(current, gradient, following)

    def _hidden(self, inputs: tuple[Packed, tf.Tensor]) -> tf.Tensor:
        batch, noise = inputs
        return base_hidden(
            self.model,
            unpack(self.model.shapes, batch),
            self._clip_norm,
            self.bottleneck,
            noise,
        )

    def _hidden_ahead(
        self, inputs: tuple[Packed, tf.Tensor], ahead: tf.Tensor
    ) -> tf.Tensor:
        batch, noise = inputs
        predicted = [
            v + ahead * u for v, u in zip(self.variables, self.velocity, strict=True)
        ]
        own = len(self.model.trainable_variables)
        fixed = [v.value for v in self.model.non_trainable_variables]
        hidden, _ = self.model.stateless_call(
            predicted[:own], fixed, unpack(self.model.shapes, batch)
        )
        if self.bottleneck is not None:
            hidden, _ = self.bottleneck.stateless_call(
                predicted[own:], [], hidden, noise
            )
        return sent_tensor(hidden, self._clip_norm)

    def _update_then_ahead(
        self,
        inputs: tuple[Packed, tf.Tensor],
        gradient: tf.Tensor,
        next_inputs: tuple[Packed, tf.Tensor],
        ahead: tf.Tensor,
    ) -> tf.Tensor:
        with tf.control_dependencies([self._update(inputs, gradient)]):
            return self._hidden_ahead(next_inputs, ahead)

    def _update(
        self, inputs: tuple[Packed, tf.Tensor], gradient: tf.Tensor
    ) -> tf.Tensor:
        # The forward pass is recomputed under the tape; with no step in between
        # the weights are those the hidden tensor was computed with (and the
        # code's noise is the forward's).
        penalized = self._nopeek > 0 or self.bottleneck is not None
        with tf.GradientTape() as tape:
            if self.bottleneck is None:
                hidden = self._hidden(inputs)
            else:
                batch, noise = inputs
                own = self.model(unpack(self.model.shapes, batch))
                hidden = sent_tensor(own, self._clip_norm, self.bottleneck, noise)
            if penalized:
                # Its gradient is the backward pass's plus the penalties'.
                target = tf.reduce_sum(hidden * gradient)
                if self._nopeek > 0:
                    target += self._nopeek * nopeek_penalty(inputs[0], hidden)
                if self.bottleneck is not None:
                    target += self._mid_weight * self.bottleneck.kl(own)
        if penalized:
            grads = tape.gradient(target, self.variables)
        else:
            grads = tape.gradient(hidden, self.variables, output_gradients=gradient)
        if not self.velocity:
            self.optimizer.apply(grads, self.variables)
            return tf.constant(0)
        # The update itself is kept: the next stale forwards extrapolate it.
        before = [tf.identity(v.value) for v in self.variables]
        self.optimizer.apply(grads, self.variables)
        for velocity, variable, old in zip(
            self.velocity, self.variables, before, strict=True
        ):
            velocity.assign(variable.value - old)
        return tf.constant(0)

    def _update_then_hidden(
        self,
        inputs: tuple[Packed, tf.Tensor],
        gradient: tf.Tensor,
        next_inputs: tuple[Packed, tf.Tensor],
    ) -> tf.Tensor:
        with tf.control_dependencies([self._update(inputs, gradient)]):
            return self._hidden(next_inputs)


class FuseStep:
    """The label party's base and fuse models with one optimizer over both.

    ``own_index`` is where the base's output stands among the fuse's inputs;
    None when the label party holds labels alone (its base outputs nothing).
    ``tasks``: the labels the fuse predicts (see ``Objective``). ``summed``:
    the peers' hidden tensors arrive as one, their sum (secure aggregation),
    and the fuse's ``sum`` or ``average`` takes the label party's own output
    and that sum."""

    def __init__(
        self,
        base: keras.Model,
        fuse: keras.Model,
        own_index: int | None,
        optimizer_name: str,
        learning_rate: float,
        tasks: Sequence[Task] = (),
        summed: bool = False,
    ) -> None:
        create_weights(base)
        self.base = base
        self.fuse = fuse
        self.own_index = own_index
        self.summed = summed
        self.objective = Objective(tasks)
        widths = [s.width for s in fuse.specs]
        peers = [
            tf.TensorSpec([None, w], tf.float32)
            for i, w in enumerate(widths)
            if i != own_index
        ]
        if summed:
            peers = peers[:1]
        fuse([tf.zeros([0, w]) for w in widths])
        self.variables = list(base.trainable_variables) + list(fuse.trainable_variables)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, self.variables)
        signature = input_signature(base.shapes)
        labels = self.objective.label_spec()
        self._train = Compiled(self._step, [signature, peers, labels])
        self._predict = Compiled(self._scores, [signature, peers])

    @property
    def state_variables(self) -> list:
        """Every variable of the base and the fuse, trainable or not."""
        return list(self.base.variables) + list(self.fuse.variables)

    def train(
        self, batch: PackedBatch, peer_hiddens: list[np.ndarray], labels: np.ndarray
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """One update; returns the loss, each task's loss, the scores and each
        peer's gradient."""
        return self._train(packed(batch), peer_hiddens, labels)

    def predict(self, batch: PackedBatch, peer_hiddens: list[np.ndarray]) -> tf.Tensor:
        return self._predict(packed(batch), peer_hiddens)

    def _logits(self, inputs: Packed, peer_hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        return fused_logits(self, unpack(self.base.shapes, inputs), peer_hiddens)

    def _step(
        self,
        inputs: Packed,
        peer_hiddens: list[tf.Tensor],
        labels: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch(peer_hiddens)
            logits = self._logits(inputs, peer_hiddens)
            loss, losses = self.objective.losses(labels, logits)
        grads = tape.gradient(loss, [self.variables, peer_hiddens])
        self.optimizer.apply(grads[0], self.variables)
        return loss, losses, tf.sigmoid(logits), grads[1]

    def _scores(self, inputs: Packed, peer_hiddens: list[tf.Tensor]) -> tf.Tensor:
        return tf.sigmoid(self._logits(inputs, peer_hiddens))


class CentralStep:
    """All bases and the fuse composed in one model: the centralized baseline."""

    def __init__(
        self,
        bases: Sequence[keras.Model],
        fuse: keras.Model,
        optimizer_name: str,
        learning_rate: float,
        tasks: Sequence[Task] = (),
    ) -> None:
        for base in bases:
            create_weights(base)
        self.bases = list(bases)
        self.fuse = fuse
        self.objective = Objective(tasks)
        fuse([tf.zeros([0, s.width]) for s in fuse.specs])
        self.variables = [v for b in self.bases for v in b.trainable_variables]
        self.variables += list(fuse.trainable_variables)
        self.optimizer = make_optimizer(optimizer_name, learning_rate, self.variables)
        signatures = [input_signature(b.shapes) for b in self.bases]
        labels = self.objective.label_spec()
        self._train = Compiled(self._step, [signatures, labels])
        self._predict = Compiled(self._scores, [signatures])

    @property
    def state_variables(self) -> list:
        """Every variable of the bases and the fuse, trainable or not."""
        return [v for m in [*self.bases, self.fuse] for v in m.variables]

    def train(
        self, batches: Sequence[PackedBatch], labels: np.ndarray
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One update over every party's batch; returns the loss, each task's
        loss and the scores."""
        return self._train([packed(b) for b in batches], labels)

    def predict(self, batches: Sequence[PackedBatch]) -> tf.Tensor:
        return self._predict([packed(b) for b in batches])

    def _logits(self, inputs: list[Packed]) -> tf.Tensor:
        hiddens = [
            base(unpack(base.shapes, x))
            for base, x in zip(self.bases, inputs, strict=True)
            if base.output_spec.width  # a base without features outputs nothing
        ]
        return self.objective.logits(self.fuse(hiddens))

    def _step(
        self, inputs: list[Packed], labels: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = self._logits(inputs)
            loss, losses = self.objective.losses(labels, logits)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply(grads, self.variables)
        return loss, losses, tf.sigmoid(logits)

    def _scores(self, inputs: list[Packed]) -> tf.Tensor:
        return tf.sigmoid(self._logits(inputs))
