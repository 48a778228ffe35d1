"""The cost of secure aggregation: the three-party job with its fuse taking the
plain sum of the base outputs, then the masked (secure) sum; samples/s,
party-to-party bytes per sample and validation AUC of each."""

from __future__ import annotations

import logging
from pathlib import Path

from splitrec.bench.runs import run_split
from splitrec.bench.setup import ensure_data, run_configs

logger = logging.getLogger(__name__)

MODES = ("sum", "secure")


def run_secure(work: Path, rows: int, batch: int, timeout: float) -> list[dict]:
    """One split run per mode on ``rows`` generated ratings (three-party
    layout, one epoch, batch ``batch``, no TLS: key shares go unsigned, which
    costs nothing per step)."""
    if rows <= 0:
        return []
    data = ensure_data(work / "data", rows, layout="three-party")
    results = []
    for mode in MODES:
        configs = run_configs(
            work / "work" / f"secure-{rows}-{mode}", data, batch, 1, "three-party"
        )
        model = configs.read("bob")["model"]
        model["aggregation"] = {"method": "sum", "secure": mode == "secure"}
        configs.edit("bob", model=model)
        logger.info("aggregation %s: %d rows, batch %d", mode, rows, batch)
        result = run_split(configs, rows, batch, 1, timeout)
        results.append(
            {
                "aggregation": mode,
                "rows": rows,
                "batch_size": batch,
                "samples_per_second": result.samples_per_second,
                "peer_bytes_per_sample": result.wire["peer_bytes_per_sample"],
                "val_auc": result.val_auc,
                "peak_rss_mb": result.peak_rss_mb,
            }
        )
    return results


def format_secure_table(rows: list[dict]) -> str:
    """The runs side by side, each against the plain sum."""
    plain = next(r for r in rows if r["aggregation"] == "sum")
    lines = [
        "secure aggregation (three parties, one epoch)",
        f"{'aggregation':<12} {'rows':>10} {'samples/s':>10} {'speed':>6} "
        f"{'bytes/sample':>12} {'bytes':>6} {'val AUC':>8} {'AUC gap':>8}",
    ]
    for row in rows:
        speed = row["samples_per_second"] / plain["samples_per_second"]
        size = row["peer_bytes_per_sample"] / plain["peer_bytes_per_sample"]
        gap = row["val_auc"] - plain["val_auc"]
        lines.append(
            f"{row['aggregation']:<12} {row['rows']:>10,} "
            f"{row['samples_per_second']:>10,.0f} {speed:>6.2f} "
            f"{row['peer_bytes_per_sample']:>12,.1f} {size:>6.2f} "
            f"{row['val_auc']:>8.4f} {gap:>+8.4f}"
        )
    return "\n".join(lines)
