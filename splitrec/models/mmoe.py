"""Multi-gate mixture of experts (MMoE, Ma et al. 2018) split across parties.

Each party's base is a DNN base (its fields' embeddings through a dense stack).
The fuse takes every base output (side by side, or their sum or mean) as the
shared input ``x`` of ``experts`` dense stacks; each task has a softmax gate over
the experts, computed from ``x``, and a tower over the gate's mixture of the
experts' outputs, ending in that task's logit:

    logit_t = tower_t( Σ_e softmax(gate_t x)_e · expert_e(x) )
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from splitrec.common.seeds import derive_seed
from splitrec.config.model import ModelConfig
from splitrec.models.dnn import DnnBase
from splitrec.models.layers import Fuse, aggregate, dense_stack, run_stack


def _linear(width: int, seed: int, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(
        width,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name=name,
    )


class MmoeFuse(Fuse):
    """The label party's top model: shared experts, a gate and a tower per task."""

    def make_layers(self, model: ModelConfig, seed: int) -> None:
        tasks = max(model.tasks, 1)
        self.experts = [
            dense_stack(
                model.expert_units, derive_seed(seed, "expert", e), f"expert{e}"
            )
            for e in range(model.experts)
        ]
        self.gates = [
            _linear(model.experts, derive_seed(seed, "gate", t), f"gate{t}")
            for t in range(tasks)
        ]
        self.towers = [
            dense_stack(model.tower_units, derive_seed(seed, "tower", t), f"tower{t}")
            for t in range(tasks)
        ]
        self.logits = [
            _linear(1, derive_seed(seed, "out", t), f"logit{t}") for t in range(tasks)
        ]

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        shared = tf.concat(aggregate(hiddens, self.aggregation), axis=1)
        # [B, experts, expert width]
        experts = tf.stack([run_stack(e, shared) for e in self.experts], axis=1)
        logits = []
        for gate, tower, logit in zip(
            self.gates, self.towers, self.logits, strict=True
        ):
            weights = tf.nn.softmax(gate(shared), axis=1)[:, :, None]
            mixed = tf.reduce_sum(experts * weights, axis=1)
            logits.append(logit(run_stack(tower, mixed)))
        return tf.concat(logits, axis=1)


BASE, FUSE = DnnBase, MmoeFuse
