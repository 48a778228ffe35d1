"""``python -m bench.leakage``: how much the split job leaks its labels.

Runs the reference split job (real party processes over loopback) once without
a gradient defense and once per defense setting. In each run alice, the feature
party, records the norm and cosine attack scores of every training row it gets
a gradient for (``privacy.leakage_probe``); this harness, which alone reads
bob's labels, turns them into leak AUCs and prints them next to the validation
AUC. Writes ``runs/bench/leakage.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.runs import run_split
from bench.setup import ROOT, ensure_data, run_configs
from common.atomic import write_atomically
from common.config import load_party_config
from common.logs import configure_logging
from common.privacy.leakage import ATTACKS, leak_auc
from party_server.leakage_probe import read_scores

logger = logging.getLogger("bench.leakage")

JOB = "deepfm-ml1m"
# The target: some defense leaks at most this AUC (every attack) ...
LEAK_LIMIT = 0.6
# ... and costs at most this much validation AUC against no defense.
COST_LIMIT = 0.01


def _defenses(text: str) -> list[tuple[str, float]]:
    found = []
    for part in filter(None, text.split(",")):
        method, _, scale = part.partition(":")
        found.append((method, float(scale) if scale else 1.0))
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.leakage", description=__doc__
    )
    parser.add_argument(
        "--defenses",
        type=_defenses,
        default=_defenses("none,max_norm,iso:1,iso:2,iso:4"),
        help="method[:scale], comma separated (none, max_norm, iso)",
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per process")
    parser.add_argument("--log-level")
    return parser.parse_args(argv)


def labels_by_id(data: Path) -> pd.Series:
    """bob's label (Rating > 3) per ID, read by the harness only."""
    bob = pd.read_csv(
        data / "bob_ml1m.csv", usecols=["ID", "Rating"], dtype={"ID": str}
    )
    return (bob.set_index("ID")["Rating"] > 3).astype(np.int8)


def leak_aucs(probe: Path, labels: pd.Series) -> dict[str, list[float]]:
    """Leak AUC of each attack, per epoch, from a probe folder."""
    scores = read_scores(probe)
    truth = labels.reindex(scores["id"]).to_numpy()
    if np.isnan(truth.astype(float)).any():
        raise ValueError(f"{probe}: scores for IDs that bob's file does not hold")
    found: dict[str, list[float]] = {attack: [] for attack in ATTACKS}
    for epoch in np.unique(scores["epoch"]):
        rows = scores["epoch"] == epoch
        for attack in ATTACKS:
            found[attack].append(leak_auc(truth[rows], scores[attack][rows]))
    return found


def run_setting(
    args: argparse.Namespace, data: Path, method: str, scale: float
) -> dict:
    folder = args.work / "work" / f"leakage-{method}-{scale:g}"
    configs = run_configs(folder, data, args.batch, 1)
    privacy: dict[str, object] = {"leakage_probe": True}
    if method != "none":
        privacy["gradient_defense"] = {"method": method, "scale": scale}
    configs.edit("job", epochs=args.epochs, privacy=privacy)
    probe = load_party_config(configs.alice).output_dir / JOB / "leakage"
    for stale in probe.glob("*.npz"):
        stale.unlink()
    logger.info("leakage: defense %s (scale %g)", method, scale)
    result = run_split(configs, args.rows, args.batch, 1, args.timeout)
    leaks = leak_aucs(probe, labels_by_id(data))
    return {
        "defense": method,
        "scale": scale if method == "iso" else None,
        "val_auc": result.val_auc,
        "leak_auc": {attack: values[-1] for attack, values in leaks.items()},
        "leak_auc_per_epoch": leaks,
    }


def with_costs(rows: list[dict]) -> list[dict]:
    """Adds each row's validation-AUC cost against the undefended run."""
    plain = next((r for r in rows if r["defense"] == "none"), None)
    for row in rows:
        row["val_auc_cost"] = plain["val_auc"] - row["val_auc"] if plain else None
        row["worst_leak_auc"] = max(row["leak_auc"].values())
    return rows


def target(rows: list[dict]) -> dict:
    """Met when some defense leaks ≤ LEAK_LIMIT at a cost ≤ COST_LIMIT."""
    meeting = [
        r
        for r in rows
        if r["defense"] != "none"
        and r["val_auc_cost"] is not None
        and r["worst_leak_auc"] <= LEAK_LIMIT
        and r["val_auc_cost"] <= COST_LIMIT
    ]
    best = min(meeting, key=lambda r: r["worst_leak_auc"], default=None)
    return {
        "target": f"leakage: a defense with leak AUC <= {LEAK_LIMIT} at val AUC "
        f"cost <= {COST_LIMIT}",
        "value": best["worst_leak_auc"] if best else None,
        "limit": LEAK_LIMIT,
        "met": best is not None,
        "setting": _name(best) if best else None,
    }


def _name(row: dict) -> str:
    return row["defense"] + (f":{row['scale']:g}" if row["scale"] else "")


def format_table(rows: list[dict]) -> str:
    lines = [
        "defense       norm leak AUC  cosine leak AUC  val AUC   cost",
    ]
    for row in rows:
        cost = row["val_auc_cost"]
        lines.append(
            f"{_name(row):<13} {row['leak_auc']['norm']:>13.4f}  "
            f"{row['leak_auc']['cosine']:>15.4f}  {row['val_auc']:.4f}  "
            + (f"{cost:+.4f}" if cost is not None else "   n/a")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    data = ensure_data(args.work / "data", args.rows)
    rows = with_costs([run_setting(args, data, m, s) for m, s in args.defenses])
    report = {
        "rows": args.rows,
        "epochs": args.epochs,
        "batch_size": args.batch,
        "results": rows,
        "target": target(rows),
    }
    path = args.work / "leakage.json"
    write_atomically(path, json.dumps(report, indent=2) + "\n")
    print(format_table(rows))
    state = "met" if report["target"]["met"] else "NOT met"
    print(
        f"target ({report['target']['target']}): {state}"
        + (f" by {report['target']['setting']}" if report["target"]["met"] else "")
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
