"""Binary classification metrics computed exactly from scores and labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-7


@dataclass(frozen=True)
class Metrics:
    count: int
    loss: float
    auc: float
    precision: float
    recall: float


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties averaged.

    Returns NaN when only one class is present.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # Average rank within each run of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.size]))
    run_ranks = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(run_ranks, ends - starts)
    rank_sum = ranks[labels].sum()
    return float(
        (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
    )


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5
) -> Metrics:
    """Log loss, AUC, and precision/recall at ``threshold`` over all rows."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.size == 0:
        return Metrics(0, float("nan"), float("nan"), float("nan"), float("nan"))
    clipped = np.clip(scores, _EPS, 1.0 - _EPS)
    loss = -np.mean(labels * np.log(clipped) + (1.0 - labels) * np.log(1.0 - clipped))
    predicted = scores >= threshold
    actual = labels > 0.5
    true_positive = float(np.sum(predicted & actual))
    precision = true_positive / max(float(predicted.sum()), 1.0)
    recall = true_positive / max(float(actual.sum()), 1.0)
    return Metrics(
        int(labels.size), float(loss), roc_auc(actual, scores), precision, recall
    )


class MetricAccumulator:
    """Collects batch scores and labels; metrics over everything seen so far.

    The loss is the mean of the per-batch training losses weighted by batch size,
    so it reports exactly what the optimizer minimized.
    """

    def __init__(self) -> None:
        self._labels: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._loss_sum = 0.0
        self._count = 0

    def add(self, labels: np.ndarray, scores: np.ndarray, mean_loss: float) -> None:
        self._labels.append(np.asarray(labels, dtype=np.float32).ravel())
        self._scores.append(np.asarray(scores, dtype=np.float32).ravel())
        self._loss_sum += float(mean_loss) * labels.shape[0]
        self._count += labels.shape[0]

    @property
    def count(self) -> int:
        return self._count

    def running_loss(self) -> float:
        return self._loss_sum / self._count if self._count else float("nan")

    def result(self) -> Metrics:
        if not self._count:
            return binary_metrics(np.zeros(0), np.zeros(0))
        labels = np.concatenate(self._labels)
        scores = np.concatenate(self._scores)
        full = binary_metrics(labels, scores)
        return Metrics(
            full.count, self.running_loss(), full.auc, full.precision, full.recall
        )

    def scores(self) -> np.ndarray:
        return np.concatenate(self._scores) if self._scores else np.zeros(0, np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """What was collected, as arrays (for a checkpoint)."""
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0)
        return {
            "metrics/labels": labels.astype(np.float32),
            "metrics/scores": self.scores(),
            "metrics/totals": np.array([self._loss_sum, self._count], np.float64),
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> MetricAccumulator:
        accumulator = cls()
        if arrays["metrics/labels"].size:
            accumulator._labels = [arrays["metrics/labels"].astype(np.float32)]
            accumulator._scores = [arrays["metrics/scores"].astype(np.float32)]
        loss_sum, count = arrays["metrics/totals"].tolist()
        accumulator._loss_sum, accumulator._count = float(loss_sum), int(count)
        return accumulator
