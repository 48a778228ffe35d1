"""Online scoring latency and throughput: ``python -m splitrec.bench.serving`` (``make
serve-bench``).

The reference job trains one epoch on generated ratings and exports its model;
alice and bob then serve it from their entity tables (``python -m
splitrec.datasets.movielens tables``) as separate processes over mutual TLS, and clients
call bob's ``Scoring`` service with one user and ``--candidates`` movies per
request:

- **uncached**: one client, every request a user the label party has not seen,
  so alice is asked for her output each time;
- **cached**: one client, users whose outputs the label party holds;
- **concurrent**: ``--clients`` client processes at once, users drawn from
  every user (mostly cached by then), for ``--seconds``.

Prints a table and writes ``runs/bench/serving.json`` with every phase's
latency percentiles, a histogram and the targets (p50 ≤ 10 ms and p99 ≤ 30 ms
uncached; p50 ≤ 4 ms cached; ≥ 20,000 candidates/s concurrently; no errors).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from splitrec.bench.runs import run_split
from splitrec.bench.setup import ROOT, ensure_data
from splitrec.coordinator.local import LocalParty, start_party
from splitrec.coordinator.local_configs import LocalConfigs
from splitrec.datasets.movielens.tables import (
    MOVIES_CSV,
    USERS_CSV,
    write_entity_tables,
)
from splitrec.security.certs import write_bundle

logger = logging.getLogger("splitrec.bench.serving")

CLIENT = "scorer"
# Histogram bucket edges in milliseconds (the last bucket is open).
EDGES_MS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 250)
TARGETS = {
    "uncached_p50_ms": 10.0,
    "uncached_p99_ms": 30.0,
    "cached_p50_ms": 4.0,
    "concurrent_candidates_per_second": 20_000.0,
}


@dataclass(frozen=True)
class Setup:
    folder: Path
    certs: Path
    address: str
    users: list[str]
    movies: list[str]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_209, help="ratings to train on (ml-1m's size)"
    )
    parser.add_argument("--candidates", type=int, default=100, help="movies a request")
    parser.add_argument("--requests", type=int, default=1000, help="per 1-client phase")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="length of the concurrent phase"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--timeout", type=float, default=1800.0)
    return parser.parse_args(argv)


def _prepare(work: Path, rows: int, timeout: float) -> tuple[LocalConfigs, Path]:
    """Trains and exports the reference job; returns its configs and certs."""
    data = ensure_data(work / "data", rows)
    folder = work / "work" / f"serving-{rows}"
    certs = folder / "certs"
    write_bundle(certs, ["alice", "bob", "coordinator", CLIENT])
    configs = LocalConfigs.write(
        folder,
        data,
        certs,
        epochs=1,
        batch_size=1024,
        predict="none",
        export="auto",
        rpc_timeout=600,
    )
    logger.info("serving bench: training one epoch on %d ratings", rows)
    run_split(configs, rows, 1024, 1, timeout)
    write_entity_tables(data, folder)
    return configs, data


def _start(configs: LocalConfigs, timeout: float) -> dict[str, LocalParty]:
    folder = configs.folder
    model = {"job": configs.read("job")["job"], "version": "epoch-1"}
    tables = {
        "alice": ("alice_users.csv", "UserID"),
        "bob": ("bob_movies.csv", "MovieID"),
    }
    for party, (table, key) in tables.items():
        serving: dict = {
            "model": model,
            "table": {"path": str(folder / table), "key": key},
        }
        if party == "bob":
            serving["clients"] = [CLIENT]
        configs.edit(party, serving=serving)
    started = {}
    try:
        # alice first: bob calls her, so he is given her address.
        for party in ("alice", "bob"):
            if party == "bob":
                configs.point_at("bob", "alice", started["alice"].address)
            started[party] = start_party(
                configs.parties[party],
                folder / "logs" / f"serve-{party}.log",
                listen="127.0.0.1:0",
                ready_timeout=timeout,
            )
    except BaseException:
        for party in started.values():
            party.stop()
        raise
    return started


def _stub(setup: Setup) -> object:
    from splitrec.security.tls import TlsConfig, load_credentials
    from splitrec.v1 import scoring_pb2_grpc
    from splitrec.wire.rpc import create_channel

    tls = TlsConfig(
        ca=setup.certs / "ca.pem",
        cert=setup.certs / f"{CLIENT}.pem",
        key=setup.certs / f"{CLIENT}.key",
    )
    channel = create_channel(setup.address, load_credentials(tls), "bob")
    return scoring_pb2_grpc.ScoringStub(channel)


def _request(setup: Setup, user: str, movies: list[str]) -> object:
    from splitrec.wire import serde

    return serde.score_request_to_proto({"alice": [user], "bob": movies})


def _timed(stub: object, requests: list) -> tuple[list[float], int, int]:
    """Each request's latency in seconds; errors; rows scored."""
    latencies, errors, scored = [], 0, 0
    for request in requests:
        start = time.perf_counter()
        try:
            reply = stub.Score(request, timeout=10)
        except Exception:  # noqa: BLE001 - a failed request is counted, not fatal
            errors += 1
            continue
        latencies.append(time.perf_counter() - start)
        scored += sum(1 for row in reply.rows if not row.problem)
    return latencies, errors, scored


def _requests(setup: Setup, users: list[str], candidates: int, seed: int) -> list:
    rng = random.Random(seed)
    return [_request(setup, u, rng.sample(setup.movies, candidates)) for u in users]


def _summary(latencies: list[float], errors: int, scored: int, seconds: float) -> dict:
    ms = np.array(latencies) * 1000.0
    counts = np.histogram(ms, bins=[0, *EDGES_MS, np.inf])[0]
    labels = [f"<{e}" for e in EDGES_MS] + [f">={EDGES_MS[-1]}"]
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "scored_candidates": scored,
        "seconds": round(seconds, 3),
        "candidates_per_second": round(scored / seconds, 1) if seconds else 0.0,
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if len(ms) else None,
        "p90_ms": round(float(np.percentile(ms, 90)), 3) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if len(ms) else None,
        "max_ms": round(float(ms.max()), 3) if len(ms) else None,
        "histogram_ms": dict(zip(labels, counts.tolist(), strict=True)),
    }


def _single(setup: Setup, users: list[str], candidates: int, seed: int) -> dict:
    stub = _stub(setup)
    requests = _requests(setup, users, candidates, seed)
    start = time.perf_counter()
    latencies, errors, scored = _timed(stub, requests)
    return _summary(latencies, errors, scored, time.perf_counter() - start)


def _client_process(args: tuple) -> tuple[list[float], int, int, float]:
    setup, candidates, seconds, seed = args
    stub = _stub(setup)
    rng = random.Random(seed)
    latencies, errors, scored = [], 0, 0
    begin = time.perf_counter()
    end = begin + seconds
    while time.perf_counter() < end:
        users = rng.choices(setup.users, k=20)
        batch = _requests(setup, users, candidates, rng.randrange(1 << 30))
        found = _timed(stub, batch)
        latencies += found[0]
        errors += found[1]
        scored += found[2]
    return latencies, errors, scored, time.perf_counter() - begin


def _concurrent(setup: Setup, clients: int, candidates: int, seconds: float) -> dict:
    jobs = [(setup, candidates, seconds, 100 + i) for i in range(clients)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(clients) as pool:
        results = pool.map(_client_process, jobs)
    latencies = [x for r in results for x in r[0]]
    elapsed = max(r[3] for r in results)
    return {
        "clients": clients,
        **_summary(
            latencies,
            sum(r[1] for r in results),
            sum(r[2] for r in results),
            elapsed,
        ),
    }


def run(args: argparse.Namespace) -> dict:
    work = args.out / "serving-work"
    configs, data = _prepare(work, args.rows, args.timeout)
    started = _start(configs, args.timeout)
    try:
        users = pd.read_csv(configs.folder / USERS_CSV, dtype=str)["UserID"]
        movies = pd.read_csv(configs.folder / MOVIES_CSV, dtype=str)["MovieID"]
        setup = Setup(
            configs.folder,
            configs.folder / "certs",
            started["bob"].address,
            users.tolist(),
            movies.tolist(),
        )
        if len(setup.users) < args.requests + 100:
            raise SystemExit(
                f"the data has {len(setup.users)} users; the uncached phase needs "
                f"{args.requests + 100} (use more --rows or fewer --requests)"
            )
        order = random.Random(7).sample(setup.users, len(setup.users))
        warm, fresh = order[:100], order[100 : 100 + args.requests]
        _single(setup, warm, args.candidates, 1)  # connections, graphs, caches
        uncached = _single(setup, fresh, args.candidates, 2)
        cached_users = [warm[i % len(warm)] for i in range(args.requests)]
        cached = _single(setup, cached_users, args.candidates, 3)
        concurrent = _concurrent(setup, args.clients, args.candidates, args.seconds)
    finally:
        for party in started.values():
            party.stop()
    measured = {
        "uncached_p50_ms": uncached["p50_ms"],
        "uncached_p99_ms": uncached["p99_ms"],
        "cached_p50_ms": cached["p50_ms"],
        "concurrent_candidates_per_second": concurrent["candidates_per_second"],
    }
    targets = {
        key: {
            "target": limit,
            "measured": measured[key],
            "met": measured[key] is not None
            and (
                measured[key] >= limit
                if key.endswith("per_second")
                else measured[key] <= limit
            ),
        }
        for key, limit in TARGETS.items()
    }
    errors = uncached["errors"] + cached["errors"] + concurrent["errors"]
    return {
        "rows": args.rows,
        "candidates": args.candidates,
        "users": len(setup.users),
        "movies": len(setup.movies),
        "transport": "mutual TLS over loopback, separate processes",
        "cpus": os.cpu_count(),
        "uncached": uncached,
        "cached": cached,
        "concurrent": concurrent,
        "targets": targets,
        "errors": errors,
        "all_met": errors == 0 and all(t["met"] for t in targets.values()),
    }


def _print(result: dict) -> None:
    print(f"online scoring, {result['candidates']} candidates a request")
    print("| phase | requests | errors | p50 ms | p90 ms | p99 ms | candidates/s |")
    print("|---|---|---|---|---|---|---|")
    for phase in ("uncached", "cached", "concurrent"):
        row = result[phase]
        name = phase + (f" ({row['clients']} clients)" if "clients" in row else "")
        print(
            f"| {name} | {row['requests']} | {row['errors']} | {row['p50_ms']} | "
            f"{row['p90_ms']} | {row['p99_ms']} | {row['candidates_per_second']:,.0f} |"
        )
    for key, target in result["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        print(f"{key}: {target['measured']} (target {target['target']:g}) {verdict}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "serving.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    print(f"wrote {path}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
