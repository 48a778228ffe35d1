"""What the coordinator adds to each epoch's record, and prints at the end."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from splitrec.common.history import EpochRecord, best_record, shown
from splitrec.config.privacy import PrivacySettings
from splitrec.coordinator.handshake import PreparedJob
from splitrec.privacy.accountant import embedding_privacy


def privacy_fields(
    privacy: PrivacySettings, prepared: PreparedJob, epoch: int
) -> dict[str, float]:
    """The history's privacy figures after 0-based ``epoch``."""
    fields: dict[str, float] = {}
    steps = prepared.steps_per_epoch
    spent = embedding_privacy(
        privacy,
        prepared.spec.batch_size,
        prepared.train_rows,
        (epoch + 1) * steps,
        steps,
        prepared.max_user_rows,
    )
    if spent is not None:
        found = dataclasses.asdict(spent)
        fields.update({k: v for k, v in found.items() if v is not None})
    if privacy.label_dp:
        fields["label_epsilon"] = privacy.label_epsilon
    return fields


def summary_lines(records: list[EpochRecord], run_dir: Path) -> list[str]:
    """The final summary printed after a job; an undefined metric shows as n/a."""
    last = records[-1]
    best = best_record(records)
    speed = sum(r.samples_per_second for r in records) / len(records)
    best_line = (
        f"  best   val AUC {shown(best.val_auc)} (epoch {best.epoch})"
        if not math.isnan(best.val_auc)
        else "  best   val AUC n/a (the validation rows hold one class)"
    )
    tasks = [
        f"  task {name}: val AUC {shown(f['val_auc'])}  loss {shown(f['val_loss'])}  "
        f"precision {shown(f['val_precision'])}  recall {shown(f['val_recall'])}"
        for name, f in (last.tasks or {}).items()
    ]
    mean = " (mean over tasks; loss: weighted total)" if tasks else ""
    return [
        f"job finished: {len(records)} epochs",
        f"  final  val AUC {shown(last.val_auc)}  loss {shown(last.val_loss)}  "
        f"precision {shown(last.val_precision)}  recall {shown(last.val_recall)}"
        + mean,
        *tasks,
        best_line,
        f"  speed  {speed:,.0f} samples/s (mean over epochs)",
        f"  history {run_dir / 'history.json'}",
        f"  curves  {run_dir / 'curves.png'}",
    ]
