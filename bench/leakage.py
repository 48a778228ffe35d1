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
from dataclasses import dataclass
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
# The reference job (MovieLens-1M size): no defense, the max-norm heuristic, and
# the directional setting that meets the target there. Wider sweeps on fewer rows:
# --rows 100000 --settings none,iso:1,iso:4,directional:1,...
DEFAULT_SETTINGS = "none,max_norm,directional:3"
# The target: some defense leaks at most this AUC (every attack) ...
LEAK_LIMIT = 0.6
# ... and costs at most this much validation AUC against no defense.
COST_LIMIT = 0.01


@dataclass(frozen=True)
class Setting:
    """One run's privacy: a gradient defense, embedding DP or label DP.

    Written ``none``, ``max_norm``, ``iso:SCALE``, ``directional:SCALE``,
    ``embedding_dp:SIGMA[:CLIP]`` or ``label_dp:EPSILON``.
    """

    kind: str
    value: float = 0.0
    clip_norm: float = 1.0

    @property
    def name(self) -> str:
        if self.kind in ("none", "max_norm"):
            return self.kind
        extra = f":{self.clip_norm:g}" if self.kind == "embedding_dp" else ""
        return f"{self.kind}:{self.value:g}{extra}"

    def privacy(self) -> dict[str, object]:
        """The job config's ``privacy`` section for this run."""
        section: dict[str, object] = {"leakage_probe": True}
        if self.kind in ("max_norm", "iso", "directional"):
            method = {"method": self.kind}
            section["gradient_defense"] = (
                method if self.kind == "max_norm" else {**method, "scale": self.value}
            )
        elif self.kind == "embedding_dp":
            section["embedding_dp"] = {
                "clip_norm": self.clip_norm,
                "noise_multiplier": self.value,
            }
        elif self.kind == "label_dp":
            section["label_dp"] = {"epsilon": self.value}
        return section


KINDS = ("none", "max_norm", "iso", "directional", "embedding_dp", "label_dp")


def _settings(text: str) -> list[Setting]:
    found = []
    for part in filter(None, text.split(",")):
        kind, *numbers = part.split(":")
        if kind not in KINDS or (kind in ("none", "max_norm")) != (not numbers):
            raise argparse.ArgumentTypeError(
                f"{part!r}: write none, max_norm, iso:SCALE, directional:SCALE, "
                "embedding_dp:SIGMA[:CLIP] or label_dp:EPSILON"
            )
        values = [float(n) for n in numbers]
        found.append(Setting(kind, *values))
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.leakage", description=__doc__
    )
    parser.add_argument(
        "--settings",
        type=_settings,
        default=_settings(DEFAULT_SETTINGS),
        help="comma separated: none, max_norm, iso:SCALE, directional:SCALE, "
        "embedding_dp:SIGMA[:CLIP], "
        "label_dp:EPSILON",
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
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
    args: argparse.Namespace, data: Path, labels: pd.Series, setting: Setting
) -> dict:
    folder = args.work / "work" / f"leakage-{setting.name.replace(':', '-')}"
    configs = run_configs(folder, data, args.batch, 1)
    configs.edit("job", epochs=args.epochs, privacy=setting.privacy())
    probe = load_party_config(configs.alice).output_dir / JOB / "leakage"
    for stale in probe.glob("*.npz"):
        stale.unlink()
    logger.info("leakage: %s", setting.name)
    result = run_split(configs, args.rows, args.batch, 1, args.timeout)
    leaks = leak_aucs(probe, labels)
    last = json.loads((folder / "runs" / JOB / "history.json").read_text())[-1]
    return {
        "setting": setting.name,
        "kind": setting.kind,
        "val_auc": result.val_auc,
        "leak_auc": {attack: values[-1] for attack, values in leaks.items()},
        "leak_auc_per_epoch": leaks,
        "epsilon": last.get("epsilon"),
        "epsilon_per_row": last.get("epsilon_per_row"),
        "label_epsilon": last.get("label_epsilon"),
    }


def with_costs(rows: list[dict]) -> list[dict]:
    """Adds each row's validation-AUC cost against the undefended run."""
    plain = next((r for r in rows if r["kind"] == "none"), None)
    for row in rows:
        row["val_auc_cost"] = plain["val_auc"] - row["val_auc"] if plain else None
        row["worst_leak_auc"] = max(row["leak_auc"].values())
    return rows


def target(rows: list[dict]) -> dict:
    """Met when some defense leaks ≤ LEAK_LIMIT at a cost ≤ COST_LIMIT."""
    meeting = [
        r
        for r in rows
        if r["kind"] != "none"
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
        "setting": best["setting"] if best else None,
    }


def format_table(rows: list[dict]) -> str:
    lines = [
        "setting               norm leak AUC  cosine leak AUC  val AUC     cost  ε",
    ]
    for row in rows:
        cost = row["val_auc_cost"]
        lines.append(
            f"{row['setting']:<21} {row['leak_auc']['norm']:>13.4f}  "
            f"{row['leak_auc']['cosine']:>15.4f}  {row['val_auc']:.4f}  "
            + (f"{cost:+.4f}" if cost is not None else "    n/a")
            + f"  {_epsilon(row)}"
        )
    return "\n".join(lines)


def _epsilon(row: dict) -> str:
    if row["epsilon"] is not None:
        return f"{row['epsilon']:.3g} (per row {row['epsilon_per_row']:.3g})"
    if row["label_epsilon"] is not None:
        return f"{row['label_epsilon']:g} (labels)"
    return "-"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    data = ensure_data(args.work / "data", args.rows)
    labels = labels_by_id(data)
    rows = with_costs([run_setting(args, data, labels, s) for s in args.settings])
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
