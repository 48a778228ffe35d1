"""A job's privacy settings, as the job config states them and every party reads
them from the job spec."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFENSES = ("none", "max_norm", "iso", "directional")
# Which of a feature party's releases embedding DP noises: the training
# forwards only, or also the evaluation and prediction passes.
DP_RELEASES = ("training", "all")
# The widest code MID's bottleneck may have.
MAX_MID_DIM = 4096


@dataclass(frozen=True)
class PrivacySpent:
    """ε spent by embedding DP (see ``splitrec.privacy.accountant``)."""

    epsilon: float
    epsilon_per_row: float
    delta: float
    # Accounted per user (``per_user``): no amplification, and each of the
    # busiest user's rows one release per epoch (None when not asked for).
    epsilon_per_user: float | None = None


@dataclass(frozen=True)
class PrivacySettings:
    """All off by default.

    - ``clip_norm`` > 0 turns embedding DP on: each row of a feature party's
      hidden tensor is clipped to this L2 norm, then Gaussian noise with standard
      deviation ``noise_multiplier * clip_norm`` is added before it is sent:
      to the training forwards only (``dp_releases`` ``training``), or to every
      release, the evaluation and prediction passes too (``all``).
    - ``delta`` is the δ at which the accountant reports ε.
    - ``dp_per_user``: embedding DP is also accounted per user, every feature
      party counting its users' rows by its ``data.user_column``.
    - ``label_epsilon`` > 0 turns label DP on: the label party trains on labels
      passed through randomized response with this ε.
    - ``gradient_defense`` perturbs the gradients the label party returns:
      ``max_norm`` (each row's noise lifts its expected norm to the batch's
      largest), ``iso`` (isotropic noise scaled by ``defense_scale`` times the
      batch's largest norm) or ``directional`` (noise only along the direction
      that separates the classes, ``defense_scale`` times the rows' RMS
      projection on it).
    - ``nopeek`` > 0 turns NoPeek on at feature parties: each base update also
      lowers this weight times the distance correlation between the batch's
      inputs and the hidden tensor it sends (``splitrec.privacy.nopeek``).
    - ``mid_weight`` > 0 turns MID on at feature parties: the hidden tensor
      passes through a variational information bottleneck of ``mid_dim`` code
      units before it is sent, and each base update also lowers this weight
      times the code's KL term (``splitrec.privacy.mid``). Training forwards
      send a sampled code; with ``mid_releases`` ``all`` the evaluation and
      prediction passes do too (else they send the code's mean).
    - ``leakage_probe`` makes the parties record what an attacker in their
      place sees (an evaluation mode): feature parties the label-inference
      attack scores of every training row, the label party the hidden tensors
      it received in the last epoch for a sample of the training rows and of
      the validation rows.
    - ``task``: in a job of several tasks, the one (by label name) that label
      DP randomizes and the gradient defense protects; a job of several tasks
      with either on must name it.
    """

    clip_norm: float = 0.0
    noise_multiplier: float = 0.0
    delta: float = 1e-5
    label_epsilon: float = 0.0
    gradient_defense: str = "none"
    defense_scale: float = 1.0
    leakage_probe: bool = False
    task: str = ""
    nopeek: float = 0.0
    dp_releases: str = "training"
    dp_per_user: bool = False
    mid_weight: float = 0.0
    mid_dim: int = 16
    mid_releases: str = "training"

    @property
    def mid(self) -> bool:
        return self.mid_weight > 0

    @property
    def mid_samples_every_release(self) -> bool:
        """MID sends a sampled code in evaluation and prediction passes too."""
        return self.mid and self.mid_releases == "all"

    @property
    def embedding_dp(self) -> bool:
        return self.clip_norm > 0

    @property
    def noises_every_release(self) -> bool:
        """Embedding DP noises the evaluation and prediction passes too."""
        return self.embedding_dp and self.dp_releases == "all"

    @property
    def label_dp(self) -> bool:
        return self.label_epsilon > 0

    def task_problem(self, tasks: Sequence[str]) -> str | None:
        """Why these settings cannot protect a job of ``tasks`` (label names;
        None when they can)."""
        needs = [
            what
            for what, on in (
                ("label DP", self.label_dp),
                (f"gradient defense {self.gradient_defense}", self.defends),
            )
            if on
        ]
        if self.task and self.task not in tasks:
            return (
                f"privacy.task {self.task!r} is not a task of this job; its tasks "
                f"are {list(tasks)}"
            )
        if needs and len(tasks) > 1 and not self.task:
            return (
                f"{' and '.join(needs)} protect one binary label, and this job has "
                f"{len(tasks)} tasks ({', '.join(tasks)}); name the one to protect "
                "with privacy.task in the job config"
            )
        return None

    @property
    def defends(self) -> bool:
        return self.gradient_defense != "none"

    def problems(self) -> list[tuple[str, str]]:
        """``(key, what is wrong)`` for each bad value; empty when all fit."""
        found = []
        numbers = {
            "embedding_dp.clip_norm": self.clip_norm,
            "embedding_dp.noise_multiplier": self.noise_multiplier,
            "embedding_dp.delta": self.delta,
            "label_dp.epsilon": self.label_epsilon,
            "gradient_defense.scale": self.defense_scale,
            "nopeek": self.nopeek,
            "mid.weight": self.mid_weight,
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
        if self.dp_releases not in DP_RELEASES:
            found.append(("embedding_dp.releases", f"use one of {DP_RELEASES}"))
        if self.label_epsilon < 0:
            found.append(("label_dp.epsilon", "must be greater than 0"))
        if self.gradient_defense not in DEFENSES:
            found.append(("gradient_defense.method", f"use one of {DEFENSES}"))
        if self.defense_scale <= 0:
            found.append(("gradient_defense.scale", "must be greater than 0"))
        if self.nopeek < 0:
            found.append(("nopeek", "must be 0 (off) or more"))
        if self.mid_weight < 0:
            found.append(("mid.weight", "must be greater than 0"))
        if not 1 <= self.mid_dim <= MAX_MID_DIM:
            found.append(("mid.dim", f"must be an integer from 1 to {MAX_MID_DIM}"))
        if self.mid_releases not in DP_RELEASES:
            found.append(("mid.releases", f"use one of {DP_RELEASES}"))
        return found
