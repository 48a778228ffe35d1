"""A job's privacy settings, as the job config states them and every party reads
them from the job spec."""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFENSES = ("none", "max_norm", "iso", "directional")


@dataclass(frozen=True)
class PrivacySpent:
    """ε spent by embedding DP (see ``common.privacy.accountant``)."""

    epsilon: float
    epsilon_per_row: float
    delta: float


@dataclass(frozen=True)
class PrivacySettings:
    """All off by default.

    - ``clip_norm`` > 0 turns embedding DP on: each row of a feature party's
      hidden tensor is clipped to this L2 norm, then Gaussian noise with standard
      deviation ``noise_multiplier * clip_norm`` is added before it is sent.
    - ``delta`` is the δ at which the accountant reports ε.
    - ``label_epsilon`` > 0 turns label DP on: the label party trains on labels
      passed through randomized response with this ε.
    - ``gradient_defense`` perturbs the gradients the label party returns:
      ``max_norm`` (each row's noise lifts its expected norm to the batch's
      largest), ``iso`` (isotropic noise scaled by ``defense_scale`` times the
      batch's largest norm) or ``directional`` (noise only along the direction
      that separates the classes, ``defense_scale`` times the rows' RMS
      projection on it).
    - ``leakage_probe`` makes feature parties record the label-inference attack
      scores of every training row (an evaluation mode).
    """

    clip_norm: float = 0.0
    noise_multiplier: float = 0.0
    delta: float = 1e-5
    label_epsilon: float = 0.0
    gradient_defense: str = "none"
    defense_scale: float = 1.0
    leakage_probe: bool = False

    @property
    def embedding_dp(self) -> bool:
        return self.clip_norm > 0

    @property
    def label_dp(self) -> bool:
        return self.label_epsilon > 0

    def problems(self) -> list[tuple[str, str]]:
        """``(key, what is wrong)`` for each bad value; empty when all fit."""
        found = []
        numbers = {
            "embedding_dp.clip_norm": self.clip_norm,
            "embedding_dp.noise_multiplier": self.noise_multiplier,
            "embedding_dp.delta": self.delta,
            "label_dp.epsilon": self.label_epsilon,
            "gradient_defense.scale": self.defense_scale,
        }
        for key, value in numbers.items():
            if not math.isfinite(value):
                found.append((key, f"must be a finite number, not {value}"))
        if found:
            return found
        if self.clip_norm < 0:
            found.append(("embedding_dp.clip_norm", "must be greater than 0"))
        if self.noise_multiplier < 0:
            found.append(("embedding_dp.noise_multiplier", "must be 0 or more"))
        if self.embedding_dp and not 0 < self.delta < 1:
            found.append(("embedding_dp.delta", "must lie in (0, 1)"))
        if self.label_epsilon < 0:
            found.append(("label_dp.epsilon", "must be greater than 0"))
        if self.gradient_defense not in DEFENSES:
            found.append(("gradient_defense.method", f"use one of {DEFENSES}"))
        if self.defense_scale <= 0:
            found.append(("gradient_defense.scale", "must be greater than 0"))
        return found
