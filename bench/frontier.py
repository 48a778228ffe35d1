"""``python -m splitrec.bench.frontier``: each defense's privacy-utility frontier.

Sweeps each defense's strength on the reference split job (one run per point,
every attack of the leakage report on every run, see
``splitrec.bench.leakage``), next to the undefended run, and writes:

- ``frontier.json``: every point (its setting, the job's privacy section and
  seed, validation AUC, its cost against no defense, every attack's score,
  baseline and excess over the baseline, and the command that runs it again),
  the Pareto points of each attack, and the recommended setting per threat;
- one picture per attack (``frontier-<attack>.png``): the attack's excess
  over its no-information baseline against validation-AUC cost, one curve per
  defense, the Pareto points ringed;
- the recommendations, printed.

``frontier.json`` is written again after every point, and a sweep started
again with the same job and attacker (``--rows``, ``--epochs``, ...) keeps the
points it finds there and runs only the rest: hours of a sweep are not lost to
an interruption. ``drop:COLUMN`` may be swept too (``drop:Gender,Age``): an
ablation, reported with the points but never a defense on a frontier.

The threats: a curious label party after a feature party's columns (the
feature-inference attacks) and a curious feature party after the labels (the
gradient attacks and model completion). For each, the cheapest setting tried
that brings all of its attacks within ``BASELINE_MARGIN`` of their baselines,
checked against the threat's cost limit; and for each attack, the lowest cost
at which it falls within the margin (the frontier's answer when no setting
meets the limit).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from splitrec.bench.leakage import (
    BASELINE_MARGIN,
    HEADER_KEYS,
    Setting,
    Truth,
    _settings,
    add_run_arguments,
    run_header,
    run_setting,
    with_costs,
)
from splitrec.bench.setup import work_lock
from splitrec.common.atomic import write_atomically
from splitrec.common.logs import configure_logging

logger = logging.getLogger("splitrec.bench.frontier")

# Each defense's strengths, weakest first (``KIND:STRENGTH,STRENGTH`` joined by
# ``;``; a strength is what follows the kind in a leakage setting).
DEFAULT_SWEEPS = (
    "directional:1,2,4,8;"
    "iso:0.5,1,2;"
    "label_dp:4,2,1;"
    "nopeek:0.3,1,3;"
    "mid:0.0003,0.001,0.003,0.01;"
    "mid_all:0.01:4,0.01,0.012,0.02;"
    "edp_all:0.3,1,3"
)


@dataclass(frozen=True)
class Threat:
    """Who attacks, which attacks are theirs, and the cost a defense may have."""

    name: str
    description: str
    attacks: Callable[[str], bool]
    cost_limit: float


THREATS = (
    Threat(
        "label_party",
        "a curious label party after a feature party's columns",
        lambda attack: attack.startswith("feature_inference:"),
        0.02,
    ),
    Threat(
        "feature_party",
        "a curious feature party after the labels",
        lambda attack: not attack.startswith("feature_inference:"),
        0.01,
    ),
)


def parse_sweeps(text: str) -> dict[str, list[Setting]]:
    """``KIND:S1,S2;KIND:...`` → each defense's settings, weakest first."""
    sweeps: dict[str, list[Setting]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        kind, _, strengths = part.partition(":")
        values = [s.strip() for s in strengths.split(",") if s.strip()]
        if not kind or not values:
            raise argparse.ArgumentTypeError(
                f"{part!r}: write KIND:STRENGTH,STRENGTH (e.g. nopeek:0.3,1,3)"
            )
        if kind in sweeps:
            raise argparse.ArgumentTypeError(f"{part!r}: {kind} is swept twice")
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise argparse.ArgumentTypeError(
                f"{part!r}: strength {twice[0]} is given twice; each point is one run"
            )
        sweeps[kind] = [_settings(f"{kind}:{value}")[0] for value in values]
    if not sweeps:
        raise argparse.ArgumentTypeError("no defense to sweep")
    return sweeps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.frontier", description=__doc__
    )
    parser.add_argument(
        "--sweeps",
        type=parse_sweeps,
        default=parse_sweeps(DEFAULT_SWEEPS),
        help="each defense's strengths: KIND:S1,S2;KIND:... "
        f"(default {DEFAULT_SWEEPS})",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="FRONTIER_JSON",
        help="run nothing: analyse the points of earlier sweeps together (of the "
        "same size and attacker; each point keeps the cost against its own "
        "sweep's undefended run) and write them to --work",
    )
    add_run_arguments(parser)
    return parser.parse_args(argv)


def pareto(points: Sequence[dict], attack: str) -> list[str]:
    """The settings no other point beats on both the AUC cost and ``attack``'s
    excess over its baseline (at least as good on both, better on one)."""

    def key(point: dict) -> tuple[float, float]:
        return point["val_auc_cost"], point["attacks"][attack]["excess"]

    kept = []
    for point in points:
        cost, excess = key(point)
        beaten = any(
            other is not point
            and key(other)[0] <= cost
            and key(other)[1] <= excess
            and key(other) != (cost, excess)
            for other in points
        )
        if not beaten:
            kept.append(point["setting"])
    return kept


def recommend(points: Sequence[dict], threat: Threat) -> dict:
    """The cheapest setting that brings all of ``threat``'s attacks within the
    margin, whether it is within the threat's cost limit, and for each attack
    the lowest cost at which it falls within the margin."""
    attacks = [a for a in points[0]["attacks"] if threat.attacks(a)] if points else []
    defended = [p for p in points if not p["undefended"]]

    def within(point: dict, names: Sequence[str]) -> bool:
        return all(point["attacks"][a]["excess"] <= BASELINE_MARGIN for a in names)

    stopping = [p for p in defended if within(p, attacks)]
    best = min(stopping, key=lambda p: p["val_auc_cost"], default=None)
    per_attack = {}
    for attack in attacks:
        cheapest = min(
            (p for p in defended if within(p, [attack])),
            key=lambda p: p["val_auc_cost"],
            default=None,
        )
        per_attack[attack] = {
            "setting": cheapest["setting"] if cheapest else None,
            "cost": cheapest["val_auc_cost"] if cheapest else None,
        }
    return {
        "threat": threat.description,
        "attacks": attacks,
        "cost_limit": threat.cost_limit,
        "setting": best["setting"] if best else None,
        "cost": best["val_auc_cost"] if best else None,
        "met": best is not None and best["val_auc_cost"] <= threat.cost_limit,
        "per_attack": per_attack,
    }


def draw(points: Sequence[dict], attack: str, path: Path, cost_limit: float) -> None:
    """One attack's frontier: excess against cost, a curve per defense, the
    undefended run and the Pareto points marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = set(pareto(points, attack))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    defenses: dict[str, list[dict]] = {}
    for point in points:
        defenses.setdefault(point["defense"], []).append(point)
    for defense, members in defenses.items():
        members.sort(key=lambda p: p["val_auc_cost"])  # a curve, left to right
        xs = [p["val_auc_cost"] for p in members]
        ys = [p["attacks"][attack]["excess"] for p in members]
        style = "k*" if defense == "none" else "o-"
        axes.plot(xs, ys, style, label=defense, markersize=7)
        for point, x, y in zip(members, xs, ys, strict=True):
            strength = point["setting"].partition(":")[2]
            if strength:
                axes.annotate(
                    strength,
                    (x, y),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    ringed = [p for p in points if p["setting"] in best]
    axes.scatter(
        [p["val_auc_cost"] for p in ringed],
        [p["attacks"][attack]["excess"] for p in ringed],
        s=180,
        facecolors="none",
        edgecolors="red",
        label="Pareto",
    )
    axes.axhline(
        BASELINE_MARGIN,
        color="grey",
        linestyle="--",
        linewidth=1,
        label=f"margin {BASELINE_MARGIN}",
    )
    axes.axvline(
        cost_limit,
        color="grey",
        linestyle=":",
        linewidth=1,
        label=f"cost limit {cost_limit}",
    )
    axes.set_xlabel("validation AUC cost (against no defense)")
    axes.set_ylabel("attack score above its baseline")
    axes.set_title(f"{attack} (lower left is better)")
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def picture_name(attack: str) -> str:
    return f"frontier-{attack.replace(':', '-')}.png"


def command(args: argparse.Namespace, setting: Setting) -> str:
    """The leakage report's command line that runs ``setting`` alone again."""
    parts = [
        "python",
        "-m",
        "splitrec.bench.leakage",
        "--settings",
        "none" if setting.undefended else f"none,{setting.name}",
        "--rows",
        str(args.rows),
        "--epochs",
        str(args.epochs),
        "--batch",
        str(args.batch),
        "--known-fraction",
        str(args.known_fraction),
        "--known-labels",
        str(args.known_labels),
    ]
    return shlex.join(parts)


def sweep(
    sweeps: dict[str, list[Setting]],
    run: Callable[[Setting], dict],
    done: Sequence[dict] = (),
    saved: Callable[[list[dict]], None] = lambda points: None,
) -> list[dict]:
    """The undefended run, then every defense's points, each with its cost;
    points of ``done`` (an earlier, interrupted sweep of the same job) are
    kept instead of run again, and ``saved`` is given the points after each,
    the earlier ones not reached yet (or not swept this time) among them."""
    plan = [("none", Setting()), *((k, s) for k, ss in sweeps.items() for s in ss)]
    earlier = {point["setting"]: point for point in done}
    rows: list[dict] = []

    def with_earlier() -> list[dict]:
        reached = {row["setting"] for row in rows}
        return rows + [p for p in done if p["setting"] not in reached]

    for defense, setting in plan:
        if setting.name in earlier:
            logger.info("%s: kept from the earlier sweep", setting.name)
            row = earlier[setting.name]
        else:
            row = run(setting)
        row["defense"] = defense
        rows.append(row)
        saved(with_costs(with_earlier()))
    return with_costs(with_earlier())


def analyse(points: list[dict], folder: Path) -> dict:
    """Pareto points, pictures and recommendations of a sweep's points (the
    ablations among them, ``drop:COLUMN``, left out: they are no defense)."""
    folder.mkdir(parents=True, exist_ok=True)
    points = [p for p in points if not p.get("dropped")]
    attacks = list(points[0]["attacks"])
    limits = {a: next(t.cost_limit for t in THREATS if t.attacks(a)) for a in attacks}
    for attack in attacks:
        draw(points, attack, folder / picture_name(attack), limits[attack])
    return {
        "pareto": {attack: pareto(points, attack) for attack in attacks},
        "pictures": {attack: picture_name(attack) for attack in attacks},
        "recommendations": {t.name: recommend(points, t) for t in THREATS},
    }


def describe(found: dict) -> str:
    lines = []
    for point in found["points"]:
        if point.get("dropped"):
            attack = f"feature_inference:{point['dropped']}"
            score = point["attacks"].get(attack)
            if score is not None:
                lines.append(
                    f"ablation {point['setting']}: {attack} at {score['score']:.3f} "
                    f"(baseline {score['baseline']:.3f}) without the column among "
                    "alice's inputs"
                )
    for advice in found["recommendations"].values():
        if advice["setting"] is None:
            verdict = "no setting tried brings all its attacks within the margin"
        else:
            within = "within" if advice["met"] else "above"
            verdict = (
                f"{advice['setting']} at AUC cost {advice['cost']:.4f} ({within} "
                f"the limit {advice['cost_limit']})"
            )
        lines.append(f"{advice['threat']}: {verdict}")
        for attack, cheapest in advice["per_attack"].items():
            where = (
                "never within the margin"
                if cheapest["setting"] is None
                else f"within the margin from cost {cheapest['cost']:.4f} "
                f"({cheapest['setting']})"
            )
            lines.append(f"  {attack}: {where}")
    return "\n".join(lines)


def merged(paths: Sequence[Path]) -> tuple[dict, list[dict]]:
    """The shared header and the points of earlier sweeps' ``frontier.json``:
    one undefended point (the first), each setting once (its first run)."""
    header: dict | None = None
    points: list[dict] = []
    seen: set[str] = set()
    for path in paths:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: not a frontier report: {exc}") from None
        if not isinstance(report, dict) or not report.get("points"):
            raise SystemExit(
                f"{path}: not a frontier report: it has no points (a frontier.json "
                "that `python -m splitrec.bench.frontier` wrote is)"
            )
        found = {k: report.get(k) for k in HEADER_KEYS}
        if header is None:
            header = found
        elif found != header:
            raise SystemExit(
                f"{path}: a sweep of another job or attacker ({found}) than the "
                f"first ({header}); merge sweeps of one size only"
            )
        for point in report.get("points", []):
            if point["setting"] not in seen:
                seen.add(point["setting"])
                points.append(point)
    assert header is not None
    return header, points


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    with work_lock(args.work, "frontier sweep"):
        return _frontier(args)


def _frontier(args: argparse.Namespace) -> int:
    folder = args.work / "frontier"
    if args.merge:
        header, points = merged(args.merge)
        report = {**header, "margin": BASELINE_MARGIN, "points": points}
        report.update(analyse(points, folder))
        write_atomically(folder / "frontier.json", json.dumps(report, indent=2) + "\n")
        print(describe(report))
        print(f"results: {folder / 'frontier.json'}; pictures: {folder}")
        return 0
    truth = Truth.load(args.work / "data", args.rows, "reference")
    path = folder / "frontier.json"
    header = run_header(args)

    def run(setting: Setting) -> dict:
        row = run_setting(args, truth, setting)
        row["command"] = command(args, setting)
        return row

    def save(points: list[dict]) -> dict:
        report = {**header, "margin": BASELINE_MARGIN, "points": points}
        report.update(analyse(points, folder))
        write_atomically(path, json.dumps(report, indent=2) + "\n")
        return report

    report = save(sweep(args.sweeps, run, earlier_points(path, header), save))
    print(describe(report))
    print(f"results: {path}; pictures: {folder}")
    return 0


def earlier_points(path: Path, header: dict) -> list[dict]:
    """The points of an earlier sweep's ``frontier.json`` at ``path`` when it
    was of the same job and attacker. Any other file there (another job's
    sweep, or no report at all) is moved aside, not overwritten, and the sweep
    starts afresh."""
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        _move_aside(path, f"it is not a frontier report ({exc})")
        return []
    found = {k: report.get(k) for k in HEADER_KEYS} if isinstance(report, dict) else {}
    if found != header:
        _move_aside(path, f"it is a sweep of another job or attacker ({found})")
        return []
    points = report.get("points", [])
    if points:
        logger.info("%s: %d points of an earlier sweep are kept", path, len(points))
    return points


def _move_aside(path: Path, why: str) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
    aside = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    number = 1
    while aside.exists():  # moved aside before within the same second
        number += 1
        aside = path.with_name(f"{path.stem}-{stamp}-{number}{path.suffix}")
    path.replace(aside)
    logger.warning("%s moved to %s: %s; this sweep starts afresh", path, aside, why)


if __name__ == "__main__":
    sys.exit(main())
