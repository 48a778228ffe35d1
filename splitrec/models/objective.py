"""What the label party's fuse is trained for: one binary task, or several.

One task: the fuse's single logit per row, binary cross-entropy. Several tasks
(``mmoe``): one logit per task and row, the loss the tasks' weighted sum of
their mean binary cross-entropies. Labels and scores are ``[B]`` for one task
and ``[B, tasks]`` for several.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from splitrec.common.metrics import Task


def bce_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    )


class Objective:
    """The loss of a fuse's logits against the labels of ``tasks``."""

    def __init__(self, tasks: Sequence[Task] = ()) -> None:
        self.tasks = tuple(tasks)
        self.several = len(self.tasks) > 1
        self._weights = tf.constant([t.weight for t in self.tasks], tf.float32)

    def label_spec(self) -> tf.TensorSpec:
        shape = [None, len(self.tasks)] if self.several else [None]
        return tf.TensorSpec(shape, tf.float32, name="labels")

    def logits(self, fused: tf.Tensor) -> tf.Tensor:
        """The fuse's ``[B, tasks]`` output as the labels are shaped."""
        return fused if self.several else tf.squeeze(fused, axis=1)

    def losses(
        self, labels: tf.Tensor, logits: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The loss to minimize and each task's mean loss (``[tasks]``; for one
        task, the loss itself)."""
        if not self.several:
            loss = bce_loss(labels, logits)
            return loss, tf.reshape(loss, [1])
        per_task = tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits),
            axis=0,
        )
        return tf.reduce_sum(per_task * self._weights), per_task
