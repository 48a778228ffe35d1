"""The job's history: ``history.json`` (one object per epoch) and ``curves.png``.

A job of several tasks keeps the same keys (its total loss and the tasks' mean
AUC, precision and recall) and adds ``tasks``: each task's own figures by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from splitrec.common.atomic import write_atomically
from splitrec.common.metrics import Metrics


def shown(value: float) -> str:
    """A metric for people: four decimals, or n/a when it is undefined (AUC over
    one class)."""
    return f"{value:.4f}" if math.isfinite(value) else "n/a"


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    train_auc: float
    val_loss: float
    val_auc: float
    val_precision: float
    val_recall: float
    samples_per_second: float
    steady_samples_per_second: float
    train_seconds: float
    # Embedding DP: ε at the job's δ after this epoch (DP-SGD convention, and
    # per row without amplification); label DP: the randomized response's ε.
    epsilon: float | None = None
    epsilon_per_row: float | None = None
    # Accounted per user (privacy.embedding_dp.per_user): the busiest user's ε.
    epsilon_per_user: float | None = None
    delta: float | None = None
    label_epsilon: float | None = None
    # Several tasks: task name -> train_loss, train_auc, val_loss, val_auc,
    # val_precision, val_recall.
    tasks: dict[str, dict[str, float]] | None = None

    @classmethod
    def of(
        cls,
        epoch: int,
        train: Metrics,
        validation: Metrics,
        train_rows: int,
        seconds: float,
        steady: float,
    ) -> EpochRecord:
        """The record of 0-based ``epoch`` (stored 1-based, as people count)."""
        tasks = None
        if train.tasks:
            tasks = {
                t.name: {
                    "train_loss": t.loss,
                    "train_auc": t.auc,
                    "val_loss": v.loss,
                    "val_auc": v.auc,
                    "val_precision": v.precision,
                    "val_recall": v.recall,
                }
                for t, v in zip(train.tasks, validation.tasks, strict=True)
            }
        return cls(
            epoch=epoch + 1,
            train_loss=train.loss,
            train_auc=train.auc,
            val_loss=validation.loss,
            val_auc=validation.auc,
            val_precision=validation.precision,
            val_recall=validation.recall,
            samples_per_second=train_rows / seconds,
            steady_samples_per_second=steady,
            train_seconds=seconds,
            tasks=tasks,
        )

    def summary(self, epochs: int) -> str:
        """One log line: the epoch's training and validation metrics and speed."""
        line = (
            f"epoch {self.epoch}/{epochs}: train loss {shown(self.train_loss)} "
            f"auc {shown(self.train_auc)} | val loss {shown(self.val_loss)} "
            f"auc {shown(self.val_auc)} precision {shown(self.val_precision)} "
            f"recall {shown(self.val_recall)} | {self.samples_per_second:.0f} samples/s"
        )
        if self.epsilon is not None:
            per_user = (
                ""
                if self.epsilon_per_user is None
                else f", per user {self.epsilon_per_user:.3g}"
            )
            line += (
                f" | embedding DP ε {self.epsilon:.3g} (per row "
                f"{self.epsilon_per_row:.3g}{per_user}) at δ {self.delta:g}"
            )
        if self.label_epsilon is not None:
            line += f" | label DP ε {self.label_epsilon:g}"
        for name, figures in (self.tasks or {}).items():
            line += (
                f" | {name}: val loss {shown(figures['val_loss'])} auc "
                f"{shown(figures['val_auc'])}"
            )
        return line


def json_record(record: dict) -> dict:
    """A record for strict JSON: an undefined metric (NaN) becomes null, in the
    tasks' figures too; a job of one task has no ``tasks`` key."""
    found = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v
        for k, v in record.items()
        if k != "tasks" or v is not None
    }
    if "tasks" in found:
        found["tasks"] = {name: json_record(v) for name, v in found["tasks"].items()}
    return found


def _metrics_back(data: dict, optional: set[str]) -> dict:
    return {
        k: float("nan") if v is None and k not in optional else v
        for k, v in data.items()
    }


def record_from_json(data: dict) -> EpochRecord:
    """The record back from JSON: null metrics are NaN again (optional privacy
    fields stay ``None``)."""
    optional = {
        "epsilon",
        "epsilon_per_row",
        "epsilon_per_user",
        "delta",
        "label_epsilon",
        "tasks",
    }
    values = _metrics_back(data, optional)
    if values.get("tasks") is not None:
        values["tasks"] = {
            name: _metrics_back(figures, set())
            for name, figures in values["tasks"].items()
        }
    return EpochRecord(**values)


def write_history(path: Path, records: list[EpochRecord]) -> None:
    rows = [json_record(asdict(r)) for r in records]
    write_atomically(path, json.dumps(rows, indent=2, allow_nan=False) + "\n")


def plot_curves(path: Path, records: list[EpochRecord]) -> None:
    """Loss and AUC per epoch, training and validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r.epoch for r in records]
    figure, (loss_axis, auc_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in ((loss_axis, "loss"), (auc_axis, "auc")):
        for who, figures in _curve_sources(records):
            for split, mark in (("train", "o-"), ("val", "s-")):
                axis.plot(
                    epochs,
                    [f[f"{split}_{metric}"] for f in figures],
                    mark,
                    label=f"{who}{'validation' if split == 'val' else 'train'}",
                )
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric.upper() if metric == "auc" else metric)
        axis.set_xticks(epochs)
        axis.grid(alpha=0.3)
        axis.legend()
    loss_axis.set_title(
        "Binary cross-entropy" + (" (weighted total)" if records[-1].tasks else "")
    )
    auc_axis.set_title("ROC AUC")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _curve_sources(records: list[EpochRecord]) -> list[tuple[str, list[dict]]]:
    """What the curves plot: the job's figures, or each task's (by name) and
    the total loss for a job of several tasks."""
    if not records[-1].tasks:
        return [("", [asdict(r) for r in records])]
    found = [("all tasks ", [asdict(r) for r in records])]
    for name in records[-1].tasks:
        found.append((f"{name} ", [r.tasks[name] for r in records]))
    return found


def best_record(records: list[EpochRecord]) -> EpochRecord:
    """The epoch of the best validation AUC (an undefined AUC counts least)."""
    return max(records, key=lambda r: -math.inf if math.isnan(r.val_auc) else r.val_auc)


# The figures of a record an epoch can be judged by, and those of each task
# (named ``<task>/<figure>``, as the history's table and TensorBoard name them).
TASK_METRICS = (
    "train_loss",
    "train_auc",
    "val_loss",
    "val_auc",
    "val_precision",
    "val_recall",
)
# The privacy budget spent, when the job's mechanisms spend one.
PRIVACY_METRICS = ("epsilon", "epsilon_per_row", "epsilon_per_user", "label_epsilon")
EPOCH_METRICS = (
    *TASK_METRICS,
    "samples_per_second",
    "steady_samples_per_second",
    "train_seconds",
    *PRIVACY_METRICS,
)


def metric_problem(name: str) -> str | None:
    """Why ``name`` cannot name a recorded figure (None when it can)."""
    task, _, figure = name.rpartition("/")
    if not task and figure in EPOCH_METRICS:
        return None
    if task and figure in TASK_METRICS and "/" not in task:
        return None
    return (
        f"{name!r} is not a recorded figure: use one of {', '.join(EPOCH_METRICS)}, "
        f"or '<task>/<figure>' with a figure of {', '.join(TASK_METRICS)}"
    )


def metric_value(record: EpochRecord, name: str) -> float:
    """The figure ``name`` of ``record`` (NaN when the record lacks it: an
    undefined AUC, no privacy budget); a ``KeyError`` for a task the job does
    not have."""
    task, _, figure = name.rpartition("/")
    if task:
        tasks = record.tasks or {}
        if task not in tasks:
            raise KeyError(
                f"{name!r}: the job has no task {task!r} (its tasks: "
                f"{', '.join(tasks) or 'none, it has one label'})"
            )
        value = tasks[task][figure]
    else:
        value = getattr(record, figure)
    return float("nan") if value is None else float(value)


def minimized(name: str) -> bool:
    """Whether lower is better for the figure ``name`` (losses, time and the
    privacy budget spent)."""
    figure = name.rpartition("/")[2]
    return figure.endswith("loss") or figure in ("train_seconds", *PRIVACY_METRICS)
