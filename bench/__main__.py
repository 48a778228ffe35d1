"""``python -m splitrec.bench``: split training against the centralized baseline.

Runs, one after the other on this machine, the centralized model and the split
job (real party processes over loopback) for each data size and batch size, with
and without the pipeline strategy, plus the scale table (``bench.scale``); prints
a table and writes ``runs/bench/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from splitrec.bench.models import (
    MOVIELENS_ROWS,
    format_models_table,
    models_targets,
    parse_model,
    run_models,
)
from splitrec.bench.network import (
    COMPRESSORS,
    LINKS,
    SETTINGS,
    format_lean_table,
    format_network_table,
    lean_targets,
    network_rows,
    network_targets,
    parse_setting,
    run_lean_table,
    run_network,
)
from splitrec.bench.psi import run_psi
from splitrec.bench.report import (
    compression_target,
    evaluate_targets,
    format_compression_table,
    format_psi_table,
    format_table,
)
from splitrec.bench.runs import RunResult, find_run, run_centralized, run_split
from splitrec.bench.scale import (
    format_scale_table,
    run_engine_psi,
    run_scale_row,
    scale_report,
    scale_targets,
)
from splitrec.bench.scoring import format_scoring_table, run_scoring, scoring_targets
from splitrec.bench.secure import format_secure_table, run_secure
from splitrec.bench.setup import ROOT, ensure_data, run_configs
from splitrec.common.atomic import write_atomically
from splitrec.common.logs import configure_logging

logger = logging.getLogger("bench")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench", description=__doc__
    )
    parser.add_argument("--rows", type=_ints, default=[100_000, 1_000_000])
    parser.add_argument("--batches", type=_ints, default=[128, 1024])
    parser.add_argument(
        "--pipeline", type=int, default=2, help="pipeline size compared with 1"
    )
    parser.add_argument(
        "--scale-rows",
        type=_ints,
        default=[1_000_000, 5_000_000, 10_000_000],
        help="sizes of the scale table (the job from Parquet); 0 or empty skips it",
    )
    parser.add_argument("--scale-batch", type=int, default=1024)
    parser.add_argument(
        "--scale-psi-ids",
        type=int,
        default=1_000_000,
        help="IDs per party of the scale table's PSI on the pool, a local Ray "
        "instance and a two-node Ray cluster; 0 skips it",
    )
    parser.add_argument(
        "--compression",
        type=_settings,
        default=_settings(
            "none,fp16,int8,topk:0.1,topk:0.3,random:0.3,topk_int8:0.1,topk_int8:0.3"
        ),
        help="compressor settings (method[:ratio], comma separated); empty skips",
    )
    parser.add_argument("--compression-rows", type=int, default=100_000)
    parser.add_argument("--compression-epochs", type=int, default=5)
    parser.add_argument("--compression-batch", type=int, default=128)
    parser.add_argument(
        "--psi-ids",
        type=_ints,
        default=[100_000, 1_000_000],
        help="IDs per party for the PSI rows (half shared); empty skips them",
    )
    parser.add_argument(
        "--models",
        type=_checked(parse_model),
        default=[
            "deepfm",
            "wide_deep",
            "dnn",
            "custom",
            "bst:4",
            "bst:20",
            "mmoe",
            "mmoe:ml1m",
        ],
        help="model families for the models table (comma separated; bst:N is BST "
        "over histories of N movies, mmoe the census job on UCI Adult at 10x, "
        "mmoe:ml1m like and love on MovieLens); empty skips",
    )
    parser.add_argument(
        "--secure-rows",
        type=int,
        default=MOVIELENS_ROWS,
        help="ratings of the secure aggregation table (three parties); 0 skips it",
    )
    parser.add_argument("--secure-batch", type=int, default=1024)
    parser.add_argument(
        "--scoring-rows",
        type=int,
        default=MOVIELENS_ROWS,
        help="ratings of the batch scoring row (train one epoch, export, score "
        "the whole file); 0 skips it",
    )
    parser.add_argument("--scoring-batch", type=int, default=1024)
    parser.add_argument("--model-rows", type=int, default=MOVIELENS_ROWS)
    parser.add_argument("--model-batch", type=int, default=1024)
    parser.add_argument(
        "--network-rows",
        type=int,
        default=MOVIELENS_ROWS,
        help="ratings of the network table (the job across shaped links); 0 skips",
    )
    parser.add_argument("--network-batches", type=_ints, default=[128, 1024])
    parser.add_argument(
        "--network-links",
        type=_names(LINKS),
        default=list(LINKS),
        help=f"links of the network table, from {', '.join(LINKS)}",
    )
    parser.add_argument(
        "--network-settings",
        type=_checked(parse_setting),
        default=list(SETTINGS),
        help="strategy settings of the network table: BASE[+predict][+COMPRESSOR], "
        "BASE k=N (a fixed depth), auto or async (default: "
        f"{', '.join(SETTINGS)})",
    )
    parser.add_argument(
        "--network-epochs",
        type=int,
        default=1,
        help="epochs of each network run (speed and AUC are the last epoch's)",
    )
    parser.add_argument(
        "--network-compressors",
        type=_texts,
        default=list(COMPRESSORS),
        help="compressors tried (with auto+predict) where bandwidth is scarce",
    )
    parser.add_argument(
        "--lean-rows",
        type=int,
        default=MOVIELENS_ROWS,
        help="ratings of the lean rows (a single-process Keras DeepFM); 0 skips",
    )
    parser.add_argument("--lean-batches", type=_ints, default=[128, 1024])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per process")
    parser.add_argument("--log-level")
    return parser.parse_args(argv)


def _texts(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _names(known: dict) -> object:
    """A comma-separated list of names from ``known``."""

    def parse(text: str) -> list[str]:
        names = _texts(text)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {unknown}; choose from {', '.join(known)}"
            )
        return names

    return parse


def _checked(parse: Callable[[str], object]) -> Callable[[str], list[str]]:
    """A comma-separated list, each entry accepted by ``parse`` (which raises
    ValueError with the form to use)."""

    def entries(text: str) -> list[str]:
        found = _texts(text)
        for entry in found:
            try:
                parse(entry)
            except ValueError as exc:  # argparse names the flag and exits 2
                raise argparse.ArgumentTypeError(str(exc)) from None
        return found

    return entries


def _settings(text: str) -> list[tuple[str, float]]:
    settings = []
    for part in filter(None, text.split(",")):
        method, _, ratio = part.partition(":")
        settings.append((method, float(ratio) if ratio else 1.0))
    return settings


def _run_compression(
    args: argparse.Namespace, done: list[RunResult] = ()
) -> list[dict]:
    """The split job once per compressor setting: bytes, speed and AUC. The
    uncompressed setting over one epoch is the split table's exact run when it
    has one of the same rows and batch (the same job), not a second run."""
    if not args.compression:
        return []
    data = ensure_data(args.work / "data", args.compression_rows)
    exact = find_run(done, "split", args.compression_rows, args.compression_batch)
    rows = []
    for method, ratio in args.compression:
        if method == "none" and args.compression_epochs == 1 and exact is not None:
            result = exact
        else:
            folder = args.work / "work" / f"compression-{method}-{ratio:g}"
            configs = run_configs(folder, data, args.compression_batch, 1)
            configs.edit(
                "job",
                epochs=args.compression_epochs,
                compression={"method": method, "ratio": ratio},
            )
            logger.info("compression %s (ratio %g)", method, ratio)
            result = run_split(
                configs, args.compression_rows, args.compression_batch, 1, args.timeout
            )
        rows.append(
            {
                "method": method,
                "ratio": ratio,
                "peer_bytes_per_sample": result.wire["peer_bytes_per_sample"],
                "samples_per_second": result.samples_per_second,
                "val_auc": result.val_auc,
            }
        )
    return rows


def _git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def _run_size(args: argparse.Namespace, rows: int) -> list[RunResult]:
    data = ensure_data(args.work / "data", rows)
    results = []
    plan = [("centralized", 1), ("split", 1)]
    if args.pipeline > 1:
        plan.append(("split", args.pipeline))
    for batch in args.batches:
        for mode, pipeline in plan:
            folder = args.work / "work" / f"{rows}-b{batch}-{mode}-k{pipeline}"
            configs = run_configs(folder, data, batch, pipeline)
            logger.info(
                "running %s: %d rows, batch %d, pipeline %d",
                mode,
                rows,
                batch,
                pipeline,
            )
            if mode == "centralized":
                result = run_centralized(configs, rows, batch, args.timeout)
            else:
                result = run_split(configs, rows, batch, pipeline, args.timeout)
            logger.info("%s", result)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    # The code measured is the one checked out when the runs start.
    commit = _git_commit()
    results: list[RunResult] = []
    for rows in args.rows:
        results += _run_size(args, rows)
    scale, scale_rows = [], []
    for rows in (r for r in args.scale_rows if r):
        row, run = run_scale_row(args.work, rows, args.scale_batch, args.timeout)
        scale_rows.append(row)
        scale.append(run)
    engine_psi = run_engine_psi(args.scale_psi_ids) if args.scale_psi_ids else {}
    compression = _run_compression(args, results)
    models = run_models(
        args.work,
        args.models,
        args.model_rows,
        args.model_batch,
        args.pipeline,
        args.timeout,
    )
    secure = run_secure(args.work, args.secure_rows, args.secure_batch, args.timeout)
    scoring = run_scoring(
        args.work, args.scoring_rows, args.scoring_batch, args.timeout
    )
    network = run_network(
        args.work,
        args.network_rows,
        args.network_batches,
        args.network_links,
        args.network_settings,
        args.network_compressors,
        args.timeout,
        args.network_epochs,
    )
    lean = run_lean_table(
        args.work, args.lean_rows, args.lean_batches, args.timeout, network, results
    )
    network_table = network_rows(network)
    psi_results = []
    for ids in args.psi_ids:
        logger.info("private ID alignment: %d IDs per party", ids)
        psi_results.append(run_psi(ids))
        logger.info("%s", psi_results[-1])
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "results": [dataclasses.asdict(r) for r in results],
        "scale": scale_report(scale_rows, engine_psi),
        "compression": compression,
        "models": [row.as_dict() for row in models],
        "secure_aggregation": secure,
        "scoring": scoring,
        "network": network_table,
        "lean": lean,
        "psi": [
            {**dataclasses.asdict(r), "bytes_per_id": r.bytes_per_id}
            for r in psi_results
        ],
    }
    report["targets"] = evaluate_targets(results, scale, args.pipeline)
    report["targets"] += compression_target(compression)
    report["targets"] += models_targets(models)
    report["targets"] += scoring_targets(scoring)
    report["targets"] += network_targets(network_table)
    report["targets"] += lean_targets(lean)
    report["targets"] += scale_targets(scale_rows, engine_psi)
    path = args.work / "results.json"
    write_atomically(path, json.dumps(report, indent=2) + "\n")
    if results or scale:
        print(format_table(results + scale, report["targets"]))
    else:  # the verdicts only
        print(format_table([], report["targets"]).split("\n", 2)[2])
    if compression:
        print(format_compression_table(compression))
    if models:
        print(format_models_table(models))
    if secure:
        print(format_secure_table(secure))
    if scoring:
        print(format_scoring_table(scoring))
    if network_table:
        print(format_network_table(network_table))
    if lean:
        print(format_lean_table(lean))
    if scale_rows or engine_psi:
        print(format_scale_table(scale_rows, engine_psi))
    if psi_results:
        print(format_psi_table(psi_results))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
