"""The speed of batch scoring with an exported model against training.

The reference job trains one epoch at the scoring batch size and exports its
model; then ``coordinator predict`` scores the whole data file again as a
dataset (every row shared). The target: scoring runs at least as fast (rows
per second of the scoring pass) as training (steady samples per second)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from splitrec.bench.runs import run_split
from splitrec.bench.setup import ensure_data, run_configs
from splitrec.common.names import scoring_run_name
from splitrec.coordinator.local import start_party

logger = logging.getLogger(__name__)

DATASET = "again"


def run_scoring(work: Path, rows: int, batch: int, timeout: float) -> list[dict]:
    """One training epoch and one scoring run on ``rows`` generated ratings."""
    if rows <= 0:
        return []
    data = ensure_data(work / "data", rows)
    configs = run_configs(work / "work" / f"scoring-{rows}", data, batch, 1)
    for name in configs.parties:
        path = configs.read(name)["data"]["path"]
        configs.edit(name, datasets={DATASET: path})
    configs.edit("job", export="auto")
    logger.info("scoring: training one epoch on %d rows, batch %d", rows, batch)
    trained = run_split(configs, rows, batch, 1, timeout)
    scored = _score(configs, timeout)
    return [
        {
            "rows": rows,
            "batch_size": batch,
            "train_samples_per_second": trained.samples_per_second,
            "score_rows_per_second": scored["rows_per_second"],
            "scored_rows": scored["scored_rows"],
            "prepare_seconds": scored["prepare_seconds"],
            "score_seconds": scored["score_seconds"],
        }
    ]


def _score(configs: object, timeout: float) -> dict:
    """``coordinator predict`` of the whole file with the exported epoch-1."""
    logs = configs.folder / "logs"
    label = configs.read("job")["label_party"]
    started = {}
    try:
        started[label] = start_party(
            configs.parties[label], logs / f"score-{label}.log", ready_timeout=timeout
        )
        for name in configs.parties:
            if name != label:
                configs.point_at(name, label, started[label].address)
                started[name] = start_party(
                    configs.parties[name], logs / f"score-{name}.log"
                )
        configs.set_addresses({n: p.address for n, p in started.items()})
        job = configs.read("job")["job"]
        command = [
            sys.executable,
            "-m",
            "splitrec.coordinator",
            "predict",
            "--job",
            str(configs.job),
            "--model",
            "epoch-1",
            "--dataset",
            DATASET,
        ]
        subprocess.run(command, check=True, timeout=timeout, capture_output=True)
    finally:
        for party in started.values():
            party.stop()
    run = configs.folder / "runs" / scoring_run_name(job, "epoch-1", DATASET)
    return json.loads((run / "scoring.json").read_text())


def scoring_targets(rows: list[dict]) -> list[dict]:
    """Scoring at least as fast as training, per run."""
    return [
        {
            "target": f"scoring {r['rows']:,} rows >= training samples/s "
            f"(batch {r['batch_size']})",
            "value": round(r["score_rows_per_second"]),
            "limit": round(r["train_samples_per_second"]),
            "met": r["score_rows_per_second"] >= r["train_samples_per_second"],
        }
        for r in rows
    ]


def format_scoring_table(rows: list[dict]) -> str:
    lines = [
        "batch scoring with an exported model (the whole file as a dataset)",
        f"{'rows':>10} {'batch':>6} {'train samples/s':>16} {'score rows/s':>13} "
        f"{'align+load s':>13} {'score s':>8}",
    ]
    for r in rows:
        lines.append(
            f"{r['rows']:>10,} {r['batch_size']:>6} "
            f"{r['train_samples_per_second']:>16,.0f} "
            f"{r['score_rows_per_second']:>13,.0f} {r['prepare_seconds']:>13.1f} "
            f"{r['score_seconds']:>8.1f}"
        )
    return "\n".join(lines)
