"""``python -m splitrec.bench.leakage``: what the split job leaks, attack by attack.

Runs the reference split job (real party processes over loopback) once per
privacy setting, with ``privacy.leakage_probe`` on, and scores four attacks:

- **norm** and **cosine** (alice infers bob's labels from the gradients she
  receives; Li et al. 2022): alice's probe records the scores of every
  training row; scored as leak AUC, max(AUC, 1 − AUC);
- **model completion** (alice infers bob's labels from her own trained base
  and a few labelled rows; Fu et al. 2022): scored as AUC;
- **feature inference** (bob infers alice's Gender, Age and Occupation from the
  tensors he receives, knowing them for 1 % of the rows): bob's probe records
  what he received in the last epoch for a sample of the training rows and of
  the validation rows; each pass is attacked on its own (with embedding DP
  only the training forwards carry noise), on the rows of users none of the
  known rows is about; scored as accuracy next to the majority-class
  accuracy, the pass where the attack does better counting.

The settings ``sum`` and ``secure`` run the three-party job instead (alice,
carol and bob, bob's fuse on the sum of the feature parties' outputs), plain
or securely aggregated: under ``secure`` bob's probe holds only the sum of
alice's and carol's tensors, and the same attacks run on what he holds. Each
row's cost is against the undefended run of its own job (``none`` or
``sum``).

This harness alone reads every party's files. It prints one table of every
attack's score next to the validation AUC and its cost against the undefended
run, and writes ``runs/bench/leakage.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from splitrec.bench.leakage_attacks import (
    ATTACKED_FEATURES,
    ENTITY,
    feature_inference_attack,
    features_by_id,
    model_completion_attack,
)
from splitrec.bench.runs import run_split
from splitrec.bench.setup import ROOT, ensure_data, run_configs, work_lock
from splitrec.common.atomic import write_atomically
from splitrec.common.batching import split_rows
from splitrec.common.logs import configure_logging
from splitrec.config.party import load_party_config
from splitrec.config.privacy import MAX_MID_DIM
from splitrec.models.registry import FAMILIES
from splitrec.party_server.leakage_probe import read_scores
from splitrec.privacy.inference import FeatureInference
from splitrec.privacy.leakage import ATTACKS, leak_auc

logger = logging.getLogger("splitrec.bench.leakage")

# The reference job (MovieLens-1M size): no defense, the cheap defense of the
# labels, it with each defense of alice's columns, label DP; the three-party
# job with the plain and the secure sum (the README's table). Wider sweeps on
# fewer rows: --rows 100000 --settings none,nopeek:1,...
DEFAULT_SETTINGS = (
    "none,directional:3,directional:3+nopeek:3,directional:3+edp:0.5,"
    "label_dp:3,sum,secure"
)
# The jobs the settings run: their data layout, and the label party's and
# alice's CSV in it.
LAYOUTS = {
    "reference": ("bob_ml1m.csv", "alice_ml1m.csv"),
    "three-party": ("bob_3p.csv", "alice_3p.csv"),
}
# The target: some setting leaves every attack within this distance of its
# no-information baseline (0.5 AUC; the majority-class accuracy) ...
BASELINE_MARGIN = 0.05
# ... and costs at most this much validation AUC against no defense.
COST_LIMIT = 0.01
# What an attacker is assumed to know: the features of this fraction of the
# training rows (feature inference), the labels of this many rows (model
# completion).
KNOWN_FRACTION = 0.01
KNOWN_LABELS = 40
# Seed of the attacks' draws (known rows, decoders).
ATTACK_SEED = 7

# Why an attack can survive every cheap setting, for the report.
WHY = {
    "norm": "the gradient's length follows |p - y|; only noise on the gradients "
    "hides it, and that noise is what alice's embeddings learn from",
    "cosine": "the gradient's direction follows the label; only noise on the "
    "gradients hides it, and that noise is what alice's embeddings learn from",
    "model_completion": "alice's base must carry what her columns say about the "
    "label, or the joint model cannot use them; a head fit on a few labelled "
    "rows reads it back, and no defense on the gradients or labels removes "
    "it without removing the utility",
    "feature_inference": "each column alice's model takes in reaches her "
    "tensor through its own embedding (DeepFM sends the fields' embedding sum "
    "and first-order weights to the fuse, and its DNN reads the same "
    "embeddings), so a decoder reads the column back; with the column left "
    "out of her inputs (the drop:COLUMN ablation) Age falls to a guess, but on "
    "the reference job's 1M rows Gender is still read, less well: her per-user "
    "embedding learns each user's taste from bob's gradients, and taste "
    "follows gender, so the column as an input leaks most and the learned "
    "taste the rest; "
    "both her DNN output and her embedding sum carry it on their own "
    "(--by-part), so no one part of the tensor can be held back instead; "
    "NoPeek brings their distance "
    "correlation with the tensor to about 0 but leaves a small exact residual "
    "that a trained decoder still reads; embedding DP's noise covers only "
    "the training forwards unless it noises every release (edp_all), and "
    "then it costs the validation pass's accuracy too; MID's sampled code "
    "hides them in training, but the validation pass sends the code's mean "
    "unless its releases are all (mid_all); and "
    "a secure sum hides alice's tensor only behind carol's, which follows "
    "other columns, so a decoder still reads alice's part of the sum",
}


@dataclass(frozen=True)
class Mechanism:
    """One privacy mechanism of a setting.

    Written ``max_norm``, ``iso:SCALE``, ``directional:SCALE``,
    ``embedding_dp:SIGMA[:CLIP]`` (or ``edp:...``; the training forwards
    noised), ``embedding_dp_all:SIGMA[:CLIP]`` (or ``edp_all:...``; every
    release noised, the validation pass too), ``label_dp:EPSILON``,
    ``nopeek:WEIGHT``, ``mid:WEIGHT[:DIM]`` (MID's bottleneck, ``DIM`` code
    units, 16 by default; ``mid_all`` samples the code in every pass, the
    validation pass too), or one of the three-party job's aggregations ``sum``
    and ``secure`` (not a privacy section: the label party's fuse input).
    ``drop:COLUMN`` is an ablation, not a defense: alice's model goes without
    that column, whose inference is still scored.
    """

    kind: str
    value: float = 0.0
    clip_norm: float = 1.0
    column: str = ""
    dim: int = 16

    @property
    def name(self) -> str:
        if self.kind in ("none", "max_norm", *AGGREGATIONS):
            return self.kind
        if self.kind == "drop":
            return f"drop:{self.column}"
        extra = f":{self.clip_norm:g}" if self.kind in EMBEDDING_DP else ""
        if self.kind in MID:
            extra = f":{self.dim}"
        return f"{self.kind}:{self.value:g}{extra}"

    def section(self) -> dict[str, object]:
        """This mechanism's part of the job config's ``privacy`` section."""
        if self.kind in ("max_norm", "iso", "directional"):
            method = {"method": self.kind}
            if self.kind == "max_norm":
                return {"gradient_defense": method}
            return {"gradient_defense": {**method, "scale": self.value}}
        if self.kind in EMBEDDING_DP:
            dp = {"clip_norm": self.clip_norm, "noise_multiplier": self.value}
            dp["releases"] = "all" if self.kind == "embedding_dp_all" else "training"
            return {"embedding_dp": dp}
        if self.kind == "label_dp":
            return {"label_dp": {"epsilon": self.value}}
        if self.kind == "nopeek":
            return {"nopeek": self.value}
        if self.kind in MID:
            releases = "all" if self.kind == "mid_all" else "training"
            return {
                "mid": {"weight": self.value, "dim": self.dim, "releases": releases}
            }
        return {}

    @property
    def group(self) -> str:
        """What a setting may hold one of: a privacy section, or the aggregation."""
        if self.kind in AGGREGATIONS:
            return "aggregation"
        return next(iter(self.section()), self.kind)


@dataclass(frozen=True)
class Setting:
    """One run's privacy: no mechanism (``none``) or several joined by ``+``
    (e.g. ``nopeek:1+directional:3``), at most one per section."""

    mechanisms: tuple[Mechanism, ...] = ()

    @property
    def name(self) -> str:
        return "+".join(m.name for m in self.mechanisms) or "none"

    @property
    def kind(self) -> str:
        return "+".join(m.kind for m in self.mechanisms) or "none"

    @property
    def aggregation(self) -> str | None:
        """``sum`` or ``secure`` in the three-party job; None in the reference job."""
        return next((m.kind for m in self.mechanisms if m.kind in AGGREGATIONS), None)

    @property
    def layout(self) -> str:
        return "reference" if self.aggregation is None else "three-party"

    @property
    def dropped(self) -> str | None:
        """The column alice's model goes without (an ablation), if any."""
        return next((m.column for m in self.mechanisms if m.kind == "drop"), None)

    @property
    def undefended(self) -> bool:
        """No privacy mechanism and no secure sum: the run others are costed against."""
        return self.kind in ("none", "sum")

    def privacy(self) -> dict[str, object]:
        """The job config's ``privacy`` section for this run."""
        section: dict[str, object] = {"leakage_probe": True}
        for mechanism in self.mechanisms:
            section.update(mechanism.section())
        return section


AGGREGATIONS = ("sum", "secure")
EMBEDDING_DP = ("embedding_dp", "embedding_dp_all")
MID = ("mid", "mid_all")
KINDS = (
    "none",
    "max_norm",
    "iso",
    "directional",
    *EMBEDDING_DP,
    "label_dp",
    "nopeek",
    *MID,
    *AGGREGATIONS,
    "drop",
)
_ALIASES = {"edp": "embedding_dp", "edp_all": "embedding_dp_all"}
_FORMS = (
    "none, max_norm, iso:SCALE, directional:SCALE, embedding_dp:SIGMA[:CLIP] "
    "(or edp:SIGMA[:CLIP]; embedding_dp_all or edp_all noise the validation "
    "pass too), label_dp:EPSILON, nopeek:WEIGHT, mid:WEIGHT[:DIM] (mid_all "
    "samples the validation pass's code too), or sum or secure "
    "(the three-party job, plain or secure sum), or the ablation drop:COLUMN "
    f"(alice's model without one of {', '.join(ATTACKED_FEATURES)}), several "
    "joined by + (e.g. nopeek:1+directional:3, secure+edp:0.5)"
)


def _mechanism(part: str) -> Mechanism:
    kind, *numbers = part.split(":")
    kind = _ALIASES.get(kind, kind)
    if kind == "drop":
        if len(numbers) != 1 or numbers[0] not in ATTACKED_FEATURES:
            raise argparse.ArgumentTypeError(f"{part!r}: write {_FORMS}")
        return Mechanism(kind, column=numbers[0])
    counts = {kind: (1, 2) for kind in (*EMBEDDING_DP, *MID)}
    counts.update({k: (0,) for k in ("none", "max_norm", *AGGREGATIONS)})
    if kind not in KINDS or len(numbers) not in counts.get(kind, (1,)):
        raise argparse.ArgumentTypeError(f"{part!r}: write {_FORMS}")
    try:
        values = [float(n) for n in numbers]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{part!r}: write {_FORMS}") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{part!r}: numbers must be above 0")
    if kind in MID:
        dim = values[1] if len(values) == 2 else 16.0
        if dim != int(dim) or not 1 <= dim <= MAX_MID_DIM:
            raise argparse.ArgumentTypeError(
                f"{part!r}: DIM must be an integer from 1 to {MAX_MID_DIM}"
            )
        return Mechanism(kind, values[0], dim=int(dim))
    return Mechanism(kind, *values)


def _settings(text: str) -> list[Setting]:
    found = []
    for part in filter(None, text.split(",")):
        mechanisms = [_mechanism(p) for p in part.split("+")]
        mechanisms = [m for m in mechanisms if m.kind != "none"]
        groups = [m.group for m in mechanisms]
        if len(set(groups)) < len(groups):
            raise argparse.ArgumentTypeError(
                f"{part!r}: at most one mechanism of each kind (one gradient "
                "defense, one aggregation) per setting"
            )
        found.append(Setting(tuple(mechanisms)))
    return found


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the runs and attacks (shared with the frontier sweep)."""
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--known-fraction",
        type=float,
        default=KNOWN_FRACTION,
        help="feature inference: the share of training rows whose features bob knows",
    )
    parser.add_argument(
        "--known-labels",
        type=int,
        default=KNOWN_LABELS,
        help="model completion: how many rows' labels alice knows",
    )
    parser.add_argument(
        "--by-part",
        action="store_true",
        help="feature inference also on each part of alice's tensor alone (the "
        "parts her model family sends, e.g. DeepFM's deep output and embedding "
        "sums): which part carries a column",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per process")
    parser.add_argument("--log-level")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.leakage", description=__doc__
    )
    parser.add_argument(
        "--settings",
        type=_settings,
        default=_settings(DEFAULT_SETTINGS),
        help=f"comma separated: {_FORMS}",
    )
    add_run_arguments(parser)
    return parser.parse_args(argv)


def labels_by_id(bob_csv: Path) -> pd.Series:
    """bob's label (Rating > 3) per ID, read by the harness only."""
    bob = pd.read_csv(bob_csv, usecols=["ID", "Rating"], dtype={"ID": str})
    return (bob.set_index("ID")["Rating"] > 3).astype(np.int8)


def leak_aucs(probe: Path, labels: pd.Series) -> dict[str, list[float]]:
    """Leak AUC of each gradient attack, per epoch, from alice's probe folder."""
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


def _worst_release(results: dict[str, FeatureInference]) -> dict:
    """One feature's attack on each pass, and the pass where it does better
    (the larger lead over its baseline) as the feature's score."""
    passes = {
        release: {
            "accuracy": r.accuracy,
            "baseline": r.baseline,
            "known_rows": r.known_rows,
            "attacked_rows": r.attacked_rows,
            "linked_accuracy": None
            if math.isnan(r.linked_accuracy)
            else r.linked_accuracy,
            "linked_rows": r.linked_rows,
        }
        for release, r in results.items()
    }
    worst = max(passes, key=lambda k: passes[k]["accuracy"] - passes[k]["baseline"])
    return {
        "accuracy": passes[worst]["accuracy"],
        "baseline": passes[worst]["baseline"],
        "release": worst,
        "passes": passes,
    }


def attack_scores(row: dict) -> dict[str, dict[str, float]]:
    """Every attack of a result row: its score, its no-information baseline and
    how far above the baseline it is."""
    found = {
        attack: {"score": row["leak_auc"][attack], "baseline": 0.5}
        for attack in ATTACKS
    }
    found["model_completion"] = {"score": row["model_completion_auc"], "baseline": 0.5}
    for name, result in row["feature_inference"].items():
        found[f"feature_inference:{name}"] = {
            "score": result["accuracy"],
            "baseline": result["baseline"],
        }
    for values in found.values():
        values["excess"] = values["score"] - values["baseline"]
    return found


@dataclass(frozen=True)
class Truth:
    """One layout's generated data and what only the harness reads of it: bob's
    labels and alice's attacked features, by ID."""

    data: Path
    labels: pd.Series
    features: pd.DataFrame

    @classmethod
    def load(cls, cache: Path, rows: int, layout: str) -> Truth:
        data = ensure_data(cache, rows, layout=layout)
        bob_csv, alice_csv = LAYOUTS[layout]
        features = features_by_id(data / alice_csv, (*ATTACKED_FEATURES, ENTITY))
        return cls(data, labels_by_id(data / bob_csv), features)


def run_setting(args: argparse.Namespace, truth: Truth, setting: Setting) -> dict:
    folder = args.work / "work" / f"leakage-{setting.name.replace(':', '-')}"
    configs = run_configs(folder, truth.data, args.batch, 1, setting.layout)
    configs.edit("job", epochs=args.epochs, privacy=setting.privacy())
    if setting.dropped is not None:
        alice = configs.read("alice")
        kept = [f for f in alice["features"] if f["name"] != setting.dropped]
        configs.edit("alice", features=kept)
    if setting.aggregation is not None:
        model = configs.read("bob")["model"]
        secure = setting.aggregation == "secure"
        model["aggregation"] = {"method": "sum", "secure": secure}
        configs.edit("bob", model=model)
    job_name = configs.read("job")["job"]
    probes = {
        party: load_party_config(getattr(configs, party)).output_dir
        / job_name
        / "leakage"
        for party in ("alice", "bob")
    }
    for probe in probes.values():
        for stale in probe.glob("*.npz"):
            stale.unlink()
    logger.info("leakage: %s", setting.name)
    result = run_split(configs, args.rows, args.batch, 1, args.timeout)
    leaks = leak_aucs(probes["alice"], truth.labels)
    job = configs.read("job")
    split = split_rows(args.rows, job["validation_fraction"], job["seed"])
    attacked = {
        release: feature_inference_attack(
            probes["bob"],
            truth.features,
            max(2, round(args.known_fraction * rows.size)),
            ATTACK_SEED,
            release,
        )
        for release, rows in (("train", split.train), ("evaluate", split.validation))
    }
    inference = {release: found for release, (_, found) in attacked.items()}
    completion = model_completion_attack(
        configs.alice, job_name, truth.labels, args.known_labels, ATTACK_SEED
    )
    last = json.loads((folder / "runs" / job_name / "history.json").read_text())[-1]
    row = {
        "setting": setting.name,
        "kind": setting.kind,
        # What reproduces the run: the job's seed and privacy section.
        "seed": job["seed"],
        "privacy": setting.privacy(),
        "layout": setting.layout,
        "undefended": setting.undefended,
        # An ablation: the column alice's model went without (not a defense).
        "dropped": setting.dropped,
        "val_auc": result.val_auc,
        "leak_auc": {attack: values[-1] for attack, values in leaks.items()},
        "leak_auc_per_epoch": leaks,
        "model_completion_auc": completion,
        "model_completion_known_labels": args.known_labels,
        # What bob's decoders read: alice's own tensor, or the sum he received.
        "attacked_tensor": attacked["train"][0],
        "feature_inference": {
            name: _worst_release(
                {release: found[name] for release, found in inference.items()}
            )
            for name in inference["train"]
        },
        "epsilon": last.get("epsilon"),
        "epsilon_per_row": last.get("epsilon_per_row"),
        "label_epsilon": last.get("label_epsilon"),
    }
    row["attacks"] = attack_scores(row)
    if args.by_part and setting.aggregation is None:
        row["feature_inference_by_part"] = _by_part(args, configs, probes["bob"], truth)
    return row


def part_columns(party_config: Path) -> dict[str, slice]:
    """Each part of a party's hidden tensor (as its model family lays it out)
    and the columns it spans."""
    model = load_party_config(party_config).model
    found, start = {}, 0
    for name, size in FAMILIES[model.family].parts(model):
        found[name] = slice(start, start + size)
        start += size
    return found


def _by_part(
    args: argparse.Namespace, configs: object, probe: Path, truth: Truth
) -> dict[str, dict[str, dict[str, float]]]:
    """Feature inference on the training forwards, the decoder reading one part
    of alice's tensor at a time (an ablation of what she sends). Under MID
    the received tensor is decoded codes: its columns are not the parts."""
    if configs.read("job").get("privacy", {}).get("mid"):
        return {}
    known = max(2, round(args.known_fraction * args.rows))
    found = {}
    for part, columns in part_columns(configs.alice).items():
        _, results = feature_inference_attack(
            probe, truth.features, known, ATTACK_SEED, "train", columns=columns
        )
        found[part] = {
            name: {"accuracy": r.accuracy, "baseline": r.baseline}
            for name, r in results.items()
        }
    return found


def format_parts(rows: list[dict]) -> str:
    """Feature inference per part of alice's tensor, a line per setting and part."""
    lines = []
    for row in rows:
        for part, results in row.get("feature_inference_by_part", {}).items():
            figures = "  ".join(
                f"{name} {r['accuracy']:.3f}/{r['baseline']:.3f}"
                for name, r in results.items()
            )
            lines.append(f"{row['setting']:<16} {part:<14} {figures}")
    if lines:
        lines.insert(0, "feature inference from one part of alice's tensor alone:")
    return "\n".join(lines)


def with_costs(rows: list[dict]) -> list[dict]:
    """Adds each row's validation-AUC cost against the undefended run of its
    job (``none``, or ``sum`` in the three-party job) and its worst attack (the
    largest excess over a baseline)."""
    plain = {}
    for row in rows:
        if row["undefended"]:
            plain.setdefault(row["layout"], row["val_auc"])
    for row in rows:
        base = plain.get(row["layout"])
        row["val_auc_cost"] = None if base is None else base - row["val_auc"]
        worst = max(row["attacks"], key=lambda a: row["attacks"][a]["excess"])
        row["worst_attack"] = worst
        row["worst_excess"] = row["attacks"][worst]["excess"]
    return rows


def target(rows: list[dict]) -> dict:
    """Met when some setting leaves every attack within ``BASELINE_MARGIN`` of
    its baseline at a cost ≤ ``COST_LIMIT``. Otherwise it names the attacks no
    setting of that cost stops: for each, its lowest lead over the baseline
    within the cost, the cheapest setting tried that does stop it (and its
    cost), and why the attack resists."""
    defended = [
        r
        for r in rows
        if not r["undefended"]
        and not r.get("dropped")
        and r["val_auc_cost"] is not None
    ]
    cheap = [r for r in defended if r["val_auc_cost"] <= COST_LIMIT]
    meeting = [r for r in cheap if r["worst_excess"] <= BASELINE_MARGIN]
    best = min(meeting, key=lambda r: r["worst_excess"], default=None)
    unstopped = {}
    for attack in rows[0]["attacks"] if rows else ():
        lowest = min(cheap, key=lambda r: r["attacks"][attack]["excess"], default=None)
        if lowest and lowest["attacks"][attack]["excess"] <= BASELINE_MARGIN:
            continue
        stopping = [
            r for r in defended if r["attacks"][attack]["excess"] <= BASELINE_MARGIN
        ]
        cheapest = min(stopping, key=lambda r: r["val_auc_cost"], default=None)
        unstopped[attack] = {
            "lowest_excess": lowest["attacks"][attack]["excess"] if lowest else None,
            "setting": lowest["setting"] if lowest else None,
            "stopped_by": cheapest["setting"] if cheapest else None,
            "stopped_at_cost": cheapest["val_auc_cost"] if cheapest else None,
            "why": WHY[attack.split(":")[0]],
        }
    return {
        "target": f"leakage: a setting with every attack within {BASELINE_MARGIN} "
        f"of its baseline at val AUC cost <= {COST_LIMIT}",
        "value": best["worst_excess"] if best else None,
        "limit": BASELINE_MARGIN,
        "met": best is not None,
        "setting": best["setting"] if best else None,
        "not_stopped": {} if best else unstopped,
    }


def format_table(rows: list[dict]) -> str:
    """One line per setting: every attack's score (feature inference as
    accuracy/majority-class accuracy), validation AUC, cost and ε."""
    width = max([len("setting"), *(len(r["setting"]) for r in rows)])
    features = list(rows[0]["feature_inference"]) if rows else []
    header = f"{'setting':<{width}}  norm   cosine  compl. "
    header += "".join(f" {name[:10]:>11} " for name in features)
    lines = [header + "  val AUC     cost  ε"]
    for row in rows:
        line = f"{row['setting']:<{width}}  {row['leak_auc']['norm']:.3f}  "
        line += f"{row['leak_auc']['cosine']:.3f}   {row['model_completion_auc']:.3f} "
        for name in features:
            result = row["feature_inference"][name]
            mark = "*" if result.get("release") == "evaluate" else " "
            line += f" {result['accuracy']:.3f}/{result['baseline']:.3f}{mark}"
        cost = row["val_auc_cost"]
        line += f"  {row['val_auc']:.4f}  " + (
            f"{cost:+.4f}" if cost is not None else "    n/a"
        )
        lines.append(line + f"  {_epsilon(row)}")
    lines.append(
        "norm, cosine: leak AUC of alice's label inference from gradients; compl.: "
        "AUC of alice's model completion; features: accuracy/majority-class "
        "accuracy of bob's feature inference on the training forwards, or with * "
        "on the validation pass where it does better"
    )
    if any(r["layout"] == "three-party" for r in rows):
        lines.append(
            "sum, secure: the three-party job (alice, carol, bob), bob's fuse on "
            "the plain or the securely aggregated sum of alice's and carol's "
            "outputs; its rows' cost is against sum"
        )
    return "\n".join(lines)


def _epsilon(row: dict) -> str:
    parts = []
    if row["epsilon"] is not None:
        parts.append(f"{row['epsilon']:.3g} (per row {row['epsilon_per_row']:.3g})")
    if row["label_epsilon"] is not None:
        parts.append(f"{row['label_epsilon']:g} (labels)")
    return ", ".join(parts) or "-"


def describe_target(found: dict) -> str:
    """The target's verdict; when not met, a line per attack that no setting
    within the cost stops."""
    if found["met"]:
        return f"target ({found['target']}): met by {found['setting']}"
    lines = [f"target ({found['target']}): NOT met"]
    for attack, miss in found["not_stopped"].items():
        if miss["setting"] is None:
            within = "no defended setting within the cost"
        else:
            within = (
                f"{miss['lowest_excess']:+.3f} above its baseline at best within "
                f"the cost ({miss['setting']})"
            )
        if miss["stopped_by"] is None:
            stopped = "no setting tried stops it"
        else:
            stopped = (
                f"stopped only at cost {miss['stopped_at_cost']:.4f} "
                f"({miss['stopped_by']})"
            )
        lines.append(f"  {attack}: {within}; {stopped}. Why: {miss['why']}")
    return "\n".join(lines)


# What every run of a report shares: its size and the attacker's knowledge.
HEADER_KEYS = ("rows", "epochs", "batch_size", "known_fraction", "known_labels")


def run_header(args: argparse.Namespace) -> dict:
    """The ``HEADER_KEYS`` of a report, from its command line."""
    values = (args.rows, args.epochs, args.batch, args.known_fraction)
    return dict(zip(HEADER_KEYS, (*values, args.known_labels), strict=True))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    with work_lock(args.work, "leakage report"):
        return _report(args)


def _report(args: argparse.Namespace) -> int:
    truths: dict[str, Truth] = {}
    found = []
    for setting in args.settings:
        if setting.layout not in truths:
            cache = args.work / "data"
            truths[setting.layout] = Truth.load(cache, args.rows, setting.layout)
        found.append(run_setting(args, truths[setting.layout], setting))
    rows = with_costs(found)
    report = {
        **run_header(args),
        "results": rows,
        "target": target(rows),
    }
    path = args.work / "leakage.json"
    write_atomically(path, json.dumps(report, indent=2) + "\n")
    print(format_table(rows))
    parts = format_parts(rows)
    if parts:
        print(parts)
    print(describe_target(report["target"]))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
