"""Binary classification metrics computed exactly from scores and labels.

A job predicts one task (one binary label) or several. With several, labels and
scores are ``[rows, tasks]`` matrices, each task has its own metrics, and the
job's ``loss`` is the tasks' weighted sum (what the optimizer minimizes) while
its ``auc``, ``precision`` and ``recall`` are the tasks' means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

_EPS = 1e-7
_NAN = float("nan")


@dataclass(frozen=True)
class TaskMetrics:
    """One task's metrics, by the name of its label."""

    name: str
    loss: float
    auc: float
    precision: float
    recall: float


@dataclass(frozen=True)
class Metrics:
    """A job's metrics; ``tasks`` is empty for a job of one task."""

    count: int
    loss: float
    auc: float
    precision: float
    recall: float
    tasks: tuple[TaskMetrics, ...] = ()


@dataclass(frozen=True)
class Task:
    """A label the job predicts and its weight in the loss."""

    name: str
    weight: float = 1.0


def of_tasks(count: int, loss: float, tasks: Sequence[TaskMetrics]) -> Metrics:
    """A several-task job's metrics: its total ``loss`` and the tasks' means."""

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else _NAN

    return Metrics(
        count,
        loss,
        mean([t.auc for t in tasks]),
        mean([t.precision for t in tasks]),
        mean([t.recall for t in tasks]),
        tuple(tasks),
    )


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


def task_metrics(
    tasks: Sequence[Task], labels: np.ndarray, scores: np.ndarray
) -> Metrics:
    """Metrics of every row: ``binary_metrics`` for one task; for several (labels
    and scores ``[rows, tasks]``), each task's, their weighted loss and means."""
    if len(tasks) <= 1:
        return binary_metrics(labels, scores)
    labels, scores = np.asarray(labels), np.asarray(scores)
    found = []
    for column, task in enumerate(tasks):
        one = binary_metrics(labels[:, column], scores[:, column])
        found.append(
            TaskMetrics(task.name, one.loss, one.auc, one.precision, one.recall)
        )
    loss = sum(t.weight * m.loss for t, m in zip(tasks, found, strict=True))
    return of_tasks(int(labels.shape[0]), float(loss), found)


class MetricAccumulator:
    """Collects batch scores and labels; metrics over everything seen so far.

    The loss is the mean of the per-batch training losses weighted by batch size,
    so it reports exactly what the optimizer minimized; with several ``tasks``,
    each task's loss is kept the same way.
    """

    def __init__(self, tasks: Sequence[Task] = ()) -> None:
        self._tasks = tuple(tasks) if len(tasks) > 1 else ()
        self._labels: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._loss_sum = 0.0
        self._task_loss_sums = np.zeros(len(self._tasks), np.float64)
        self._count = 0

    def _rows(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        return values.reshape(-1, len(self._tasks)) if self._tasks else values.ravel()

    def add(
        self,
        labels: np.ndarray,
        scores: np.ndarray,
        mean_loss: float,
        task_losses: Sequence[float] = (),
    ) -> None:
        """One batch: its labels, scores, mean loss, and with several tasks each
        task's mean loss."""
        self._labels.append(self._rows(labels))
        self._scores.append(self._rows(scores))
        self._loss_sum += float(mean_loss) * labels.shape[0]
        if self._tasks:
            self._task_loss_sums += (
                np.asarray(task_losses, np.float64) * labels.shape[0]
            )
        self._count += labels.shape[0]

    @property
    def count(self) -> int:
        return self._count

    def running_loss(self) -> float:
        return self._loss_sum / self._count if self._count else _NAN

    def running(self) -> Metrics:
        """The running losses alone (AUC, precision and recall wait for the
        epoch's end)."""
        count = self._count
        tasks = [
            TaskMetrics(t.name, float(total / count) if count else _NAN, *[_NAN] * 3)
            for t, total in zip(self._tasks, self._task_loss_sums, strict=True)
        ]
        if tasks:
            return of_tasks(self._count, self.running_loss(), tasks)
        return Metrics(self._count, self.running_loss(), _NAN, _NAN, _NAN)

    def result(self) -> Metrics:
        """Every metric of what was collected; the losses are the optimizer's
        (see the class), not recomputed from the scores."""
        if not self._count:
            return self.running()
        full = task_metrics(
            self._tasks, np.concatenate(self._labels), np.concatenate(self._scores)
        )
        if not self._tasks:
            return replace(full, loss=self.running_loss())
        losses = self._task_loss_sums / self._count
        tasks = [
            replace(m, loss=float(loss))
            for m, loss in zip(full.tasks, losses, strict=True)
        ]
        return of_tasks(self._count, self.running_loss(), tasks)

    def scores(self) -> np.ndarray:
        if self._scores:
            return np.concatenate(self._scores)
        return self._rows(np.zeros(0, np.float32))

    def state(self) -> dict[str, np.ndarray]:
        """What was collected, as arrays (for a checkpoint)."""
        labels = np.concatenate(self._labels) if self._labels else self.scores()
        totals = [self._loss_sum, self._count, *self._task_loss_sums.tolist()]
        return {
            "metrics/labels": labels.astype(np.float32),
            "metrics/scores": self.scores(),
            "metrics/totals": np.array(totals, np.float64),
        }

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], tasks: Sequence[Task] = ()
    ) -> MetricAccumulator:
        accumulator = cls(tasks)
        if arrays["metrics/labels"].size:
            accumulator._labels = [accumulator._rows(arrays["metrics/labels"])]
            accumulator._scores = [accumulator._rows(arrays["metrics/scores"])]
        totals = arrays["metrics/totals"].tolist()
        if len(totals) != 2 + len(accumulator._tasks):
            raise ValueError(
                f"the metrics state holds {len(totals) - 2} task losses, not "
                f"{len(accumulator._tasks)}"
            )
        accumulator._loss_sum, accumulator._count = float(totals[0]), int(totals[1])
        accumulator._task_loss_sums = np.array(totals[2:], np.float64)
        return accumulator
