"""The ``models`` table: every model family, split against its centralized twin.

For each family, on its reference data (generated MovieLens for the MovieLens
families; MMoE on the census job, generated UCI Adult at 10x Adult's size, or on
MovieLens with two tasks), one epoch of the centralized model and of the split
job at pipeline size 1 (whose validation AUC must equal the centralized one
within 1e-4) and at the benchmark's pipeline size (whose speed is compared with
the centralized one). A job of several tasks reports the tasks' mean AUC.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from splitrec.bench.runs import RunResult, run_centralized, run_split
from splitrec.bench.setup import census_rows, ensure_census, ensure_data, run_configs

logger = logging.getLogger(__name__)

# Families held to the split/centralized throughput target (DeepFM has its own
# in the main table; a custom model is whatever its user wrote).
RATIO_TARGET = {"dnn": 0.7, "wide_deep": 0.7, "bst": 0.7, "mmoe": 0.7}


def _ratio_target(entry: str) -> float | None:
    return RATIO_TARGET.get(entry.partition(":")[0])


CENSUS_SCALE = 10
AUC_EQUAL = 1e-4
MEMORY_LIMIT_MB = 1536.0
MOVIELENS_ROWS = 1_000_209


@dataclass
class ModelRow:
    family: str
    centralized: RunResult
    exact: RunResult
    pipelined: RunResult

    def as_dict(self) -> dict:
        return {
            "family": self.family,
            "rows": self.exact.rows,
            "batch_size": self.exact.batch_size,
            "pipeline_size": self.pipelined.pipeline_size,
            "split_samples_per_second": self.pipelined.samples_per_second,
            "centralized_samples_per_second": self.centralized.samples_per_second,
            "ratio": self.ratio,
            "val_auc_centralized": self.centralized.val_auc,
            "val_auc_split": self.exact.val_auc,
            "val_auc_split_pipelined": self.pipelined.val_auc,
            "peak_party_mb": self.peak_party_mb,
        }

    @property
    def ratio(self) -> float:
        return self.pipelined.samples_per_second / self.centralized.samples_per_second

    @property
    def peak_party_mb(self) -> float:
        return max(
            r.peak_rss_mb.get(p, 0.0)
            for r in (self.exact, self.pipelined)
            for p in ("alice", "bob")
        )


def run_models(
    work: Path,
    families: list[str],
    rows: int,
    batch: int,
    pipeline: int,
    timeout: float,
) -> list[ModelRow]:
    table = []
    for entry in families:
        family, layout, length = parse_model(entry)
        entry_rows = rows
        if layout == "census":
            entry_rows = census_rows(CENSUS_SCALE)
            data = ensure_census(work / "data", CENSUS_SCALE)
        else:
            data = ensure_data(work / "data", rows, length)
        results = []
        for mode, k in (("centralized", 1), ("split", 1), ("split", pipeline)):
            name = entry.replace(":", "-")
            folder = work / "work" / f"models-{name}-{entry_rows}-b{batch}-{mode}-k{k}"
            configs = run_configs(folder, data, batch, k, layout=layout)
            if length:  # the BST job: bob's history of ``length`` movies
                configs.set_sequence_length(length)
            elif layout == "reference":
                configs.set_family(family)
            logger.info("model %s: %s, pipeline %d", family, mode, k)
            run = run_centralized if mode == "centralized" else run_split
            args = (
                (configs, entry_rows, batch)
                if mode == "centralized"
                else (configs, entry_rows, batch, k)
            )
            results.append(run(*args, timeout))
        table.append(ModelRow(entry, *results))
    return table


def parse_model(entry: str) -> tuple[str, str, int]:
    """``--models`` entries: a family on the reference columns, ``bst:N`` (BST
    with histories of N movies; ``bst`` alone: 4), ``mmoe`` (the census job on
    UCI Adult at 10x) or ``mmoe:ml1m`` (like and love on MovieLens). Returns the
    family, the data layout and the history length (0 without one)."""
    family, _, option = entry.partition(":")
    if family == "mmoe":
        if option not in ("", "ml1m"):
            raise ValueError(f"{entry!r}: mmoe runs on census (mmoe) or ml1m")
        return family, "two-tasks" if option else "census", 0
    if family != "bst":
        if option:
            raise ValueError(f"{entry!r}: only bst and mmoe take a :option")
        return family, "reference", 0
    if not option:
        return family, "bst", 4
    if not option.isdigit() or not 1 <= int(option) <= 1024:
        raise ValueError(f"{entry!r}: the history length must be 1 to 1024")
    return family, "bst", int(option)


def models_targets(table: list[ModelRow]) -> list[dict]:
    targets = []
    for row in table:
        where = {"family": row.family, "rows": row.exact.rows}
        gap = abs(row.exact.val_auc - row.centralized.val_auc)
        targets.append(
            {
                "target": "model: split AUC = centralized AUC (pipeline 1)",
                "value": gap,
                "limit": AUC_EQUAL,
                "met": gap <= AUC_EQUAL,
                **where,
            }
        )
        limit = _ratio_target(row.family)
        if limit is not None:
            targets.append(
                {
                    "target": "model: split/centralized throughput",
                    "value": row.ratio,
                    "limit": limit,
                    "met": row.ratio >= limit,
                    "batch_size": row.exact.batch_size,
                    "pipeline_size": row.pipelined.pipeline_size,
                    **where,
                }
            )
        if row.exact.rows >= MOVIELENS_ROWS:
            targets.append(
                {
                    "target": "model: peak memory per party (MB)",
                    "value": row.peak_party_mb,
                    "limit": MEMORY_LIMIT_MB,
                    "met": row.peak_party_mb <= MEMORY_LIMIT_MB,
                    **where,
                }
            )
    return targets


def format_models_table(table: list[ModelRow]) -> str:
    header = (
        f"{'family':<11}{'rows':>9}{'batch':>7}{'K':>3}{'split/s':>10}"
        f"{'central/s':>11}{'ratio':>7}{'AUC central':>13}{'AUC split':>11}"
        f"{'AUC split K':>13}{'party MB':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in table:
        d = row.as_dict()
        lines.append(
            f"{d['family']:<11}{d['rows']:>9}{d['batch_size']:>7}"
            f"{d['pipeline_size']:>3}{d['split_samples_per_second']:>10,.0f}"
            f"{d['centralized_samples_per_second']:>11,.0f}{d['ratio']:>7.2f}"
            f"{d['val_auc_centralized']:>13.4f}{d['val_auc_split']:>11.4f}"
            f"{d['val_auc_split_pipelined']:>13.4f}{d['peak_party_mb']:>10.0f}"
        )
    return "\n".join(lines)
