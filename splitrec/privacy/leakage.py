"""Label-inference attacks on the gradients a feature party receives (Li et al.
2022, "Label Leakage and Protection in Two-party Split Learning").

With a sigmoid output and cross-entropy, the gradient of row i w.r.t. its hidden
vector is ``(p_i − y_i) · ∂logit_i/∂h_i``: its length and its direction both
depend on the label. The feature party computes two scores per row, without any
label:

- ``norm``: ‖g_i‖₂;
- ``cosine``: cos(g_i, r), where r is the batch's leading singular direction,
  its sign carried from batch to batch (r · r_previous ≥ 0), so the scores of all
  batches share one orientation.

The leak AUC, computed only by an evaluation harness that holds the true labels,
is ``max(AUC, 1 − AUC)`` of a score against the labels: 0.5 means the score says
nothing about the label, 1.0 that it gives every label away.
"""

from __future__ import annotations

import numpy as np

from splitrec.common.metrics import roc_auc
from splitrec.privacy.mechanisms import leading_direction

ATTACKS = ("norm", "cosine")


class AttackScores:
    """Scores of one feature party's training rows, batch after batch."""

    def __init__(self) -> None:
        self._reference: np.ndarray | None = None

    def score(self, gradient: np.ndarray) -> dict[str, np.ndarray]:
        """Norm and cosine scores of each row of one batch's gradient."""
        values = gradient.astype(np.float64)
        norms = np.linalg.norm(values, axis=1)
        direction = self._direction(values)
        cosine = values @ direction / np.maximum(norms, 1e-30)
        return {"norm": norms, "cosine": cosine}

    def _direction(self, values: np.ndarray) -> np.ndarray:
        found = leading_direction(values)
        if self._reference is not None and found @ self._reference < 0:
            found = -found
        self._reference = found
        return found


def leak_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """How well ``scores`` separate the two classes, whichever way round."""
    auc = roc_auc(np.asarray(labels, dtype=np.float64), np.asarray(scores))
    return float(max(auc, 1.0 - auc))
