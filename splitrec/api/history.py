"""A run's history as a table: one row per epoch, as a pandas DataFrame."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from splitrec.common.history import EpochRecord, metric_value, minimized


def history_frame(records: Sequence[EpochRecord]) -> pd.DataFrame:
    """One row per epoch (index ``epoch``, 1-based): the record's figures,
    then each task's as ``<task>/<figure>`` in a job of several tasks.
    Undefined figures are NaN; privacy columns appear when the job spent a
    budget."""
    rows = []
    for record in records:
        row: dict[str, Any] = {
            k: v for k, v in dataclasses.asdict(record).items() if k != "tasks"
        }
        for task, figures in (record.tasks or {}).items():
            row.update({f"{task}/{name}": value for name, value in figures.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["epoch"]).set_index("epoch")
    privacy = [
        "epsilon",
        "epsilon_per_row",
        "epsilon_per_user",
        "delta",
        "label_epsilon",
    ]
    unused = [c for c in privacy if frame[c].isna().all()]
    return frame.drop(columns=unused).set_index("epoch").astype(float)


class History:
    """What ``fit`` returns: the run's epochs (earlier ones of a resumed run
    included) and where its files are."""

    def __init__(
        self,
        records: Sequence[EpochRecord],
        run_dir: Path,
        exported: str | None = None,
        stopped_by: Sequence[str] = (),
    ) -> None:
        self.records = list(records)
        self.run_dir = run_dir
        # The model version the parties exported at the end (None: none).
        self.exported = exported
        # Why training ended early (a callback's reasons; empty: it did not).
        self.stopped_by = list(stopped_by)
        self.frame = history_frame(self.records)

    @property
    def epochs(self) -> int:
        return len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"History({self.epochs} epochs, run {self.run_dir})"

    def _repr_html_(self) -> str:
        return self.frame._repr_html_()

    def best(self, monitor: str = "val_auc", mode: str = "auto") -> pd.Series:
        """The row of the best epoch by ``monitor`` (min for losses, else max;
        or ``mode``); undefined values never win."""
        if not self.records:
            raise ValueError("the history has no epoch yet")
        lower = minimized(monitor) if mode == "auto" else mode == "min"

        def rank(record: EpochRecord) -> float:
            value = metric_value(record, monitor)
            if math.isnan(value):
                return math.inf
            return value if lower else -value

        best = min(self.records, key=rank)
        return self.frame.loc[best.epoch]

    def plot(self, columns: Sequence[str] | None = None) -> Any:
        """A matplotlib figure: losses on the left, AUCs on the right (or the
        ``columns`` given, one panel); returns the figure."""
        import matplotlib.pyplot as plt

        frame = self.frame
        if columns is not None:
            figure, axis = plt.subplots(figsize=(6, 4))
            frame[list(columns)].plot(ax=axis, marker="o")
            axis.set_xlabel("epoch")
            return figure
        figure, (losses, aucs) = plt.subplots(1, 2, figsize=(11, 4))
        for axis, suffix, title in ((losses, "loss", "loss"), (aucs, "auc", "AUC")):
            chosen = [c for c in frame.columns if c.endswith(suffix)]
            if chosen:
                frame[chosen].plot(ax=axis, marker="o")
            axis.set_title(title)
            axis.set_xlabel("epoch")
        figure.tight_layout()
        return figure
