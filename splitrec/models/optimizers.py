"""The optimizers a job names, built so that a compiled step runs few operations.

Keras's Adam computes its step's scalars (the step count, both bias
corrections and the step size ``α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)``) again for every
variable it updates: about half of the operations an update adds to a
compiled step, each with its fixed cost. ``Adam`` here computes them once per
update and shares them among the variables; everything else is Keras's
update, so the numbers are the same to the bit, and so are the variables
(and their paths, which checkpoints are keyed by).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


class Adam(keras.optimizers.Adam):
    """Keras's Adam with its per-step scalars computed once per ``apply``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # The step size of the update being applied, by variable dtype.
        self._step_sizes: dict[str, object] = {}

    def apply(
        self, grads: Sequence, trainable_variables: Sequence | None = None
    ) -> object:
        self._step_sizes = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_sizes = {}

    def _step_size(self, learning_rate: object, dtype: str) -> object:
        """``α`` of this update for variables of ``dtype``, made at its first
        variable of that dtype."""
        found = self._step_sizes.get(dtype)
        if found is None:
            rate = ops.cast(learning_rate, dtype)
            step = ops.cast(self.iterations + 1, dtype)
            first = ops.power(ops.cast(self.beta_1, dtype), step)
            second = ops.power(ops.cast(self.beta_2, dtype), step)
            found = rate * ops.sqrt(1 - second) / (1 - first)
            self._step_sizes[dtype] = found
        return found

    def update_step(
        self, gradient: object, variable: object, learning_rate: object
    ) -> None:
        if self.amsgrad:
            super().update_step(gradient, variable, learning_rate)
            return
        alpha = self._step_size(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(
            v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2)
        )
        self.assign_sub(
            variable,
            ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)),
        )
