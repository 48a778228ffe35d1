"""Binary classification metrics computed exactly from scores and labels.

A job predicts one task (one binary label) or several. With several, labels and
scores are ``[rows, tasks]`` matrices, each task has its own metrics, and the
job's ``loss`` is the tasks' weighted sum (what the optimizer minimizes) while
its ``auc``, ``precision`` and ``recall`` are the tasks' means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


# Positive scores compared with the negatives at a time (bounds the memory).
_COMPARED = 1_000_000


def sorted_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve from the positives' and the negatives' scores,
    each sorted ascending: the share of (positive, negative) pairs the positive
    wins, a tie counting half (NaN without one of the classes).

    It equals the rank-sum formula with ties averaged, to the bit: both
    numerators are sums of halves, exact in float64 below 2^52.
    """
    return blocks_auc([positives], [negatives])


def blocks_auc(positives: list[np.ndarray], negatives: list[np.ndarray]) -> float:
    """``sorted_auc`` of scores kept in blocks, each block sorted ascending."""
    count = sum(b.size for b in positives) * sum(b.size for b in negatives)
    if count == 0:
        return _NAN
    below, ties = 0, 0
    for block in positives:
        for start in range(0, block.size, _COMPARED):
            part = block[start : start + _COMPARED]
            for other in negatives:
                left = np.searchsorted(other, part, "left")
                right = np.searchsorted(other, part, "right")
                below += int(left.sum())
                ties += int((right - left).sum())
    return float((below + ties / 2.0) / count)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula, ties averaged.

    Returns NaN when only one class is present.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    return sorted_auc(np.sort(scores[labels]), np.sort(scores[~labels]))


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


# Scores sorted together: what sorting adds to memory is one block.
_BLOCK = 1_000_000


class _Sorted:
    """Scores of one class: batches as they came, then sorted blocks of about
    ``_BLOCK`` scores, which replace them (so they are in memory once)."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.parts: list[np.ndarray] = []

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks) + sum(p.size for p in self.parts)

    def sorted_blocks(self) -> list[np.ndarray]:
        group: list[np.ndarray] = []
        grouped = 0
        self.parts.reverse()
        while self.parts:
            group.append(self.parts.pop())
            grouped += group[-1].size
            if grouped >= _BLOCK or not self.parts:
                block = np.concatenate(group).astype(np.float32, copy=False)
                group.clear()
                grouped = 0
                block.sort()
                self.blocks.append(block)
        return self.blocks

    def at_or_above(self, threshold: float) -> int:
        blocks = self.sorted_blocks()
        return sum(b.size - int(np.searchsorted(b, threshold, "left")) for b in blocks)

    def whole(self) -> np.ndarray:
        """Every score, sorted (a copy)."""
        blocks = self.sorted_blocks()
        return np.sort(np.concatenate(blocks)) if blocks else np.zeros(0, np.float32)


class _Scores:
    """One task's scores, kept by class (float32, 4 bytes a row)."""

    def __init__(self) -> None:
        self.positives = _Sorted()
        self.negatives = _Sorted()

    def add(self, actual: np.ndarray, scores: np.ndarray) -> None:
        self.positives.parts.append(scores[actual])
        self.negatives.parts.append(scores[~actual])

    def metrics(self, loss: float) -> Metrics:
        """``binary_metrics`` of these scores at threshold 0.5, with ``loss``."""
        true = self.positives.at_or_above(0.5)
        false = self.negatives.at_or_above(0.5)
        return Metrics(
            self.positives.size + self.negatives.size,
            loss,
            blocks_auc(self.positives.sorted_blocks(), self.negatives.sorted_blocks()),
            true / max(float(true + false), 1.0),
            true / max(float(self.positives.size), 1.0),
        )


class MetricAccumulator:
    """Collects batch scores and labels; metrics over everything seen so far.

    The loss is the mean of the per-batch training losses weighted by batch size,
    so it reports exactly what the optimizer minimized; with several ``tasks``,
    each task's loss is kept the same way.

    Each task keeps its scores by class, 4 bytes a row (not the rows' order):
    the AUC, precision and recall are what ``binary_metrics`` gives for the
    rows (a label above 0.5 is positive).
    """

    def __init__(self, tasks: Sequence[Task] = ()) -> None:
        self._tasks = tuple(tasks) if len(tasks) > 1 else ()
        self._scores = [_Scores() for _ in range(max(1, len(self._tasks)))]
        self._loss_sum = 0.0
        self._task_loss_sums = np.zeros(len(self._tasks), np.float64)
        self._count = 0

    def _columns(self, values: np.ndarray) -> np.ndarray:
        """``[rows, tasks]`` float32 (one column for one task)."""
        return np.asarray(values, dtype=np.float32).reshape(-1, len(self._scores))

    def add(
        self,
        labels: np.ndarray,
        scores: np.ndarray,
        mean_loss: float,
        task_losses: Sequence[float] = (),
    ) -> None:
        """One batch: its labels, scores, mean loss, and with several tasks each
        task's mean loss."""
        actual = self._columns(labels) > 0.5
        found = self._columns(scores)
        for column, kept in enumerate(self._scores):
            kept.add(actual[:, column], found[:, column])
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
        if not self._tasks:
            return self._scores[0].metrics(self.running_loss())
        tasks = []
        for task, kept, total in zip(
            self._tasks, self._scores, self._task_loss_sums, strict=True
        ):
            one = kept.metrics(float(total / self._count))
            tasks.append(
                TaskMetrics(task.name, one.loss, one.auc, one.precision, one.recall)
            )
        return of_tasks(self._count, self.running_loss(), tasks)

    def scores(self) -> np.ndarray:
        """Every score kept, each task's positives then negatives, sorted."""
        parts = [
            part
            for kept in self._scores
            for part in (kept.positives.whole(), kept.negatives.whole())
        ]
        return np.concatenate(parts)

    def state(self) -> dict[str, np.ndarray]:
        """What was collected, as arrays (for a checkpoint): the same for the
        same scores, however they came."""
        counts = [[k.positives.size, k.negatives.size] for k in self._scores]
        totals = [self._loss_sum, self._count, *self._task_loss_sums.tolist()]
        return {
            "metrics/scores": self.scores(),
            "metrics/classes": np.array(counts, np.int64).reshape(-1, 2),
            "metrics/totals": np.array(totals, np.float64),
        }

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], tasks: Sequence[Task] = ()
    ) -> MetricAccumulator:
        accumulator = cls(tasks)
        totals = arrays["metrics/totals"].tolist()
        if len(totals) != 2 + len(accumulator._tasks):
            raise ValueError(
                f"the metrics state holds {len(totals) - 2} task losses, not "
                f"{len(accumulator._tasks)}"
            )
        if "metrics/classes" in arrays:
            accumulator._load_classes(
                arrays["metrics/scores"], arrays["metrics/classes"]
            )
        elif arrays["metrics/labels"].size:  # a state of rows, as kept before
            actual = accumulator._columns(arrays["metrics/labels"]) > 0.5
            found = accumulator._columns(arrays["metrics/scores"])
            for column, kept in enumerate(accumulator._scores):
                kept.add(actual[:, column], found[:, column])
        accumulator._loss_sum, accumulator._count = float(totals[0]), int(totals[1])
        accumulator._task_loss_sums = np.array(totals[2:], np.float64)
        return accumulator

    def _load_classes(self, scores: np.ndarray, classes: np.ndarray) -> None:
        if classes.shape != (len(self._scores), 2) or scores.size != classes.sum():
            raise ValueError(
                f"the metrics state holds {scores.size} scores in classes "
                f"{classes.tolist()}, not of {len(self._scores)} task(s)"
            )
        at = 0
        for kept, (positives, negatives) in zip(self._scores, classes, strict=True):
            kept.positives.parts = [np.array(scores[at : at + positives], np.float32)]
            at += positives
            kept.negatives.parts = [np.array(scores[at : at + negatives], np.float32)]
            at += negatives
