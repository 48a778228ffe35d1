"""The reference job across links between companies, and the lean reference.

``network``: the split DeepFM job on generated MovieLens data, one epoch per
run unless asked for more, with alice's link to bob through the user-space shaper
(``splitrec.bench.shaper``) at each round trip and bandwidth of ``LINKS``, for
each strategy setting of ``SETTINGS``: samples/s, epoch seconds, validation
AUC and its gap to the exact run (pipeline size 1, whatever the link: its
result does not depend on timing), and the depth an auto pipeline chose.
Compressors are tried where bandwidth is scarce (``COMPRESSED_LINKS``).

``lean``: the simplest centralized Keras DeepFM on the same data, on both
cores (``splitrec.bench.lean``), against the split job on loopback; the split
job with each party pinned to a core of its own, as if on its own host; and
the split model's centralized twin (``splitrec baseline``: the same towers
and fuse in one process), which tells the cost of the split model's shape
apart from the cost of splitting it.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from splitrec.bench.lean import run_lean
from splitrec.bench.runs import RunResult, find_run, run_centralized, run_split
from splitrec.bench.setup import ensure_data, run_configs
from splitrec.bench.shaper import LinkShape
from splitrec.common.compression import Compressor

logger = logging.getLogger(__name__)

# name -> (round trip ms, bandwidth Mbit/s); None: loopback, no shaper.
LINKS: dict[str, tuple[float, float] | None] = {
    "loopback": None,
    "10ms/1Gbit": (10.0, 1000.0),
    "20ms/100Mbit": (20.0, 100.0),
    "50ms/100Mbit": (50.0, 100.0),
    "50ms/20Mbit": (50.0, 20.0),
}
# The settings run by default (``parse_setting`` reads any other).
SETTINGS = ("k=1", "auto", "auto+predict", "async")
# A setting's base by name -> the job's strategy section (k=N aside).
_BASES: dict[str, dict] = {
    "auto": {"pipeline_size": "auto"},
    "async": {"name": "async", "local_steps": 4, "pipeline_size": "auto"},
}
# Compressors tried (with auto+predict) on the links with little bandwidth.
COMPRESSORS = ("fp16", "int8", "topk_int8:0.3")
COMPRESSED_LINKS = ("20ms/100Mbit", "50ms/100Mbit", "50ms/20Mbit")
# Targets: (link, samples/s against loopback at least, AUC gap at most).
NETWORK_TARGETS = (("20ms/100Mbit", 0.8, 0.003), ("50ms/100Mbit", 0.5, 0.005))
# Targets of the split job against the lean model on loopback: at batch 1024
# and above, and below it.
LEAN_TARGETS = {128: 0.6, 1024: 0.9}


@dataclass
class NetworkRow:
    link: str
    setting: str
    batch_size: int
    rows: int
    samples_per_second: float
    epoch_seconds: float
    val_auc: float
    # Median and largest depth an auto pipeline chose (0: fixed depth).
    depth_median: float = 0.0
    depth_max: int = 0
    peer_bytes_per_sample: float = 0.0
    # Epochs of the run; speed and AUC are the last epoch's.
    epochs: int = 1


def link_shape(link: str) -> LinkShape | None:
    shape = LINKS[link]
    if shape is None:
        return None
    rtt_ms, rate = shape
    return LinkShape.from_round_trip(rtt_ms, rate)


def parse_setting(name: str) -> tuple[dict, dict]:
    """(strategy section, compression section) of a setting's name:
    ``BASE[+predict][+COMPRESSOR]``, BASE one of ``k=N`` (a fixed depth N),
    ``auto`` or ``async``, COMPRESSOR a compression method with an optional
    ``:ratio`` (``auto+predict+topk_int8:0.3``, ``k=3+predict``, ``auto+int8``)."""
    base, *rest = name.split("+")
    if base.startswith("k=") and base[2:].isdigit() and int(base[2:]) >= 1:
        strategy: dict = {"pipeline_size": int(base[2:])}
    elif base in _BASES:
        strategy = dict(_BASES[base])
    else:
        raise ValueError(
            f"setting {name!r}: begins with k=N (N at least 1), auto or async, "
            "then +predict and/or +COMPRESSOR (e.g. auto+predict+int8)"
        )
    if rest and rest[0] == "predict":
        strategy["compensation"] = "predict"
        rest = rest[1:]
    if len(rest) > 1 or (rest and not rest[0]):
        raise ValueError(
            f"setting {name!r}: after the base, +predict and one compressor at most"
        )
    compression: dict = {}
    if rest:
        method, _, ratio = rest[0].partition(":")
        try:
            compression = {"method": method, "ratio": float(ratio or 1.0)}
            Compressor(method, ratio=compression["ratio"])
        except ValueError as exc:
            raise ValueError(f"setting {name!r}: {exc}") from None
    return strategy, compression


def _depths(configs_folder: Path, job: str, party: str = "alice") -> list[int]:
    """The depths an auto pipeline chose, one per control point."""
    path = configs_folder / "runs" / party / job / "pipeline-depths.json"
    if not path.exists():
        return []
    return [depth for _, depth in json.loads(path.read_text())]


def run_network_case(
    work: Path,
    data: Path,
    rows: int,
    batch: int,
    link: str,
    setting: str,
    timeout: float,
    epochs: int = 1,
) -> NetworkRow:
    strategy, compression = parse_setting(setting)
    name = f"{link}-{setting}".replace("/", "-").replace(":", "-").replace("+", "-")
    runs = f"{rows}-b{batch}" + (f"-e{epochs}" if epochs != 1 else "")
    folder = work / "network" / runs / name
    configs = run_configs(folder, data, batch, 1)
    configs.edit(
        "job",
        epochs=epochs,
        strategy=strategy,
        compression=compression or {"method": "none"},
    )
    logger.info("network: %s, %s, batch %d", link, setting, batch)
    result: RunResult = run_split(
        configs, rows, batch, 1, timeout, link=link_shape(link)
    )
    depths = _depths(configs.folder, configs.read("job")["job"])
    return NetworkRow(
        link=link,
        setting=setting,
        batch_size=batch,
        rows=rows,
        samples_per_second=result.samples_per_second,
        epoch_seconds=result.epoch_seconds,
        val_auc=result.val_auc,
        depth_median=statistics.median(depths) if depths else 0.0,
        depth_max=max(depths, default=0),
        peer_bytes_per_sample=result.wire.get("peer_bytes_per_sample", 0.0),
        epochs=epochs,
    )


def run_network(
    work: Path,
    rows: int,
    batches: list[int],
    links: list[str],
    settings: list[str],
    compressors: list[str],
    timeout: float,
    epochs: int = 1,
) -> list[NetworkRow]:
    """Every (batch, link, setting) run of ``epochs`` epochs, plus the
    compressors on the links with little bandwidth."""
    if not rows or not links:
        return []
    data = ensure_data(work / "data", rows)
    table = []
    for batch in batches:
        for link in links:
            cases = list(settings)
            if link in COMPRESSED_LINKS:
                cases += [f"auto+predict+{c}" for c in compressors]
            for setting in cases:
                row = run_network_case(
                    work, data, rows, batch, link, setting, timeout, epochs
                )
                logger.info("%s", row)
                table.append(row)
    return table


def _find(
    table: list[NetworkRow], row: NetworkRow, setting: str, link: str | None = None
) -> NetworkRow | None:
    """The run of ``setting`` (on ``link``, any link when None) with ``row``'s
    batch and epochs."""
    return next(
        (
            r
            for r in table
            if (r.batch_size, r.epochs, r.setting)
            == (row.batch_size, row.epochs, setting)
            and link in (None, r.link)
        ),
        None,
    )


def network_rows(table: list[NetworkRow]) -> list[dict]:
    """The rows as JSON, each with its AUC gap to the exact run and its
    samples/s against the same setting on loopback."""
    out = []
    for row in table:
        exact = _find(table, row, "k=1")
        near = _find(table, row, row.setting, "loopback")
        out.append(
            {
                **asdict(row),
                "auc_gap": abs(row.val_auc - exact.val_auc) if exact else None,
                "vs_loopback": row.samples_per_second / near.samples_per_second
                if near and near.samples_per_second
                else None,
            }
        )
    return out


def network_targets(rows: list[dict]) -> list[dict]:
    """Per link of ``NETWORK_TARGETS``, batch and epochs: the fastest setting
    within the AUC gap, its samples/s against loopback's best."""
    targets = []
    runs: dict[tuple, list[dict]] = {}
    for r in rows:
        runs.setdefault((r["link"], r["batch_size"], r["epochs"]), []).append(r)
    for link, need, gap in NETWORK_TARGETS:
        for batch, epochs in sorted({(r["batch_size"], r["epochs"]) for r in rows}):
            here = runs.get((link, batch, epochs), [])
            near = [
                r
                for r in runs.get(("loopback", batch, epochs), [])
                if r["auc_gap"] is not None and r["auc_gap"] <= gap
            ]
            if not here or not near:
                continue
            best_near = max(r["samples_per_second"] for r in near)
            good = [r for r in here if r["auc_gap"] is not None and r["auc_gap"] <= gap]
            best = max(good, key=lambda r: r["samples_per_second"], default=None)
            ratio = best["samples_per_second"] / best_near if best else 0.0
            targets.append(
                {
                    "target": "samples/s across the link / loopback, within AUC gap",
                    "value": ratio,
                    "limit": need,
                    "met": ratio >= need,
                    "link": link,
                    "batch_size": batch,
                    "epochs": epochs,
                    "auc_gap_limit": gap,
                    "setting": best["setting"] if best else None,
                }
            )
    return targets


def format_network_table(rows: list[dict]) -> str:
    lines = [
        "network: the reference job across a shaped link (alice <-> bob); "
        "speed and AUC of the last epoch",
        f"{'link':<13} {'batch':>5} {'ep':>3} {'setting':<26} {'samples/s':>10} "
        f"{'x loopb.':>8} {'epoch s':>8} {'val_AUC':>8} {'gap':>7} "
        f"{'depth':>9} {'B/sample':>9}",
    ]
    for r in rows:
        depth = f"{r['depth_median']:g}/{r['depth_max']}" if r["depth_max"] else "-"
        ratio = f"{r['vs_loopback']:.2f}" if r["vs_loopback"] is not None else "-"
        gap = f"{r['auc_gap']:.4f}" if r["auc_gap"] is not None else "-"
        lines.append(
            f"{r['link']:<13} {r['batch_size']:>5} {r['epochs']:>3} {r['setting']:<26} "
            f"{r['samples_per_second']:>10,.0f} {ratio:>8} "
            f"{r['epoch_seconds']:>8.1f} {r['val_auc']:>8.4f} {gap:>7} "
            f"{depth:>9} {r['peer_bytes_per_sample']:>9.1f}"
        )
    return "\n".join(lines)


# --- lean -------------------------------------------------------------------


def run_lean_table(
    work: Path,
    rows: int,
    batches: list[int],
    timeout: float,
    network: list[NetworkRow] = (),
    done: list[RunResult] = (),
) -> list[dict]:
    """For each batch: the lean model on both cores, the split model's
    centralized twin, the split job (pipeline size auto) on loopback (the
    network table's run when it has one), and the split job with alice and bob
    pinned to a core each. Runs of the same rows and batch in ``network``
    (the split job) and ``done`` (the twin) are taken instead of repeated."""
    if not rows:
        return []
    data = ensure_data(work / "data", rows)
    table = []
    for batch in batches:
        folder = work / "lean" / f"{rows}-b{batch}"
        lean = run_lean(data, batch, folder / "lean", timeout)
        entry = {
            "batch_size": batch,
            "rows": rows,
            "lean_samples_per_second": lean["samples_per_second"],
            "lean_val_auc": lean["val_auc"],
            "lean_peak_rss_mb": lean["peak_rss_mb"],
        }
        twin = find_run(done, "centralized", rows, batch)
        if twin is None:
            logger.info("lean: the centralized twin, batch %d", batch)
            twin_configs = run_configs(folder / "twin", data, batch, 1)
            twin = run_centralized(twin_configs, rows, batch, timeout)
        entry["twin_samples_per_second"] = twin.samples_per_second
        entry["twin_val_auc"] = twin.val_auc
        entry["twin_ratio"] = twin.samples_per_second / lean["samples_per_second"]
        near = next(
            (
                r
                for r in network
                if (r.link, r.setting, r.batch_size, r.rows)
                == ("loopback", "auto", batch, rows)
            ),
            None,
        )
        for mode, cores in (("split", None), ("split_pinned", {"alice": 0, "bob": 1})):
            if mode == "split" and near is not None:
                speed, auc = near.samples_per_second, near.val_auc
            else:
                configs = run_configs(folder / mode, data, batch, 1)
                configs.edit("job", strategy=_BASES["auto"])
                logger.info("lean: %s, batch %d", mode, batch)
                result = run_split(configs, rows, batch, 1, timeout, cores=cores)
                speed, auc = result.samples_per_second, result.val_auc
            entry[f"{mode}_samples_per_second"] = speed
            entry[f"{mode}_val_auc"] = auc
            entry[f"{mode}_ratio"] = speed / lean["samples_per_second"]
            entry[f"{mode}_vs_twin"] = speed / twin.samples_per_second
        table.append(entry)
    return table


def lean_targets(table: list[dict]) -> list[dict]:
    targets = []
    for entry in table:
        need = LEAN_TARGETS[1024 if entry["batch_size"] >= 1024 else 128]
        for mode in ("split", "split_pinned"):
            ratio = entry[f"{mode}_ratio"]
            targets.append(
                {
                    "target": f"{mode} / lean samples/s",
                    "value": ratio,
                    "limit": need,
                    "met": ratio >= need,
                    "batch_size": entry["batch_size"],
                }
            )
    return targets


def format_lean_table(table: list[dict]) -> str:
    lines = [
        "lean: a single-process Keras DeepFM (both cores) against the split job "
        "on loopback (pipeline auto); twin: the split model in one process",
        f"{'batch':>5} {'lean s/s':>9} {'lean AUC':>8} {'twin s/s':>9} {'ratio':>6} "
        f"{'split s/s':>9} {'ratio':>6} {'/twin':>6} "
        f"{'pinned s/s':>10} {'ratio':>6} {'split AUC':>9}",
    ]
    for e in table:
        lines.append(
            f"{e['batch_size']:>5} {e['lean_samples_per_second']:>9,.0f} "
            f"{e['lean_val_auc']:>8.4f} {e['twin_samples_per_second']:>9,.0f} "
            f"{e['twin_ratio']:>6.2f} {e['split_samples_per_second']:>9,.0f} "
            f"{e['split_ratio']:>6.2f} {e['split_vs_twin']:>6.2f} "
            f"{e['split_pinned_samples_per_second']:>10,.0f} "
            f"{e['split_pinned_ratio']:>6.2f} {e['split_val_auc']:>9.4f}"
        )
    return "\n".join(lines)
