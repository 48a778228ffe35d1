"""The scale table: the reference job from Parquet at growing sizes.

Each size is one real run (party processes over loopback, one epoch, PSI not
cached): the generated ratings converted to Parquet datasets of 1M-row shards,
each party on the engine its config gives it (by default a local Ray instance
from 1M rows on). A row reports the alignment's seconds (the label party's
log), the epoch's seconds and steady samples/s, each party's peak memory (its
process, and the sum of its engine processes' peaks) and the disk it used (its
Parquet input and its output folder: the row store, checkpoints, the PSI
cache).

Besides, PSI alone (``bench.psi``) on the party's process pool and on a local
Ray instance at the same size, per CPU, and once on a two-node Ray cluster
started on this machine (``ray.cluster_utils``), showing which node ran how
many tasks.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from splitrec.bench.psi import PsiResult, run_psi
from splitrec.bench.report import target
from splitrec.bench.runs import RunResult, run_split
from splitrec.bench.setup import ensure_data, run_configs
from splitrec.config.engine import EngineConfig
from splitrec.datasets.movielens.prepare import ALICE_CSV, BOB_CSV
from splitrec.datasets.parquet import csv_to_parquet

logger = logging.getLogger(__name__)

PARTIES = {"alice": ALICE_CSV, "bob": BOB_CSV}
SHARD_ROWS = 1_000_000
# Peak memory per party at the largest size within this factor of the smallest.
MEMORY_FACTOR = 1.2
# Epoch time at the largest size within this factor of the smallest's, scaled.
TIME_FACTOR = 1.2
# The cluster's nodes share a loopback address other than 127.0.0.1, which Ray
# would rewrite to the host's outward address when connecting.
NODE_ADDRESS = "127.0.0.2"
_ALIGNED = re.compile(r"aligned \d+ of \d+ rows with .* in ([0-9.]+) s")
_MB = 1024 * 1024


@dataclass(frozen=True)
class ScaleRow:
    rows: int
    alignment_seconds: float
    epoch_seconds: float
    samples_per_second: float
    val_auc: float
    # Per party: its process's peak, its engine processes' peaks summed, both.
    process_mb: dict[str, float]
    engine_mb: dict[str, float]
    party_mb: dict[str, float]
    engine_processes: dict[str, dict[str, float]]
    # Per party: its Parquet dataset, and its output folder after the run.
    input_mb: dict[str, float]
    output_mb: dict[str, float]


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / _MB
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / _MB


def parquet_data(cache: Path, rows: int) -> dict[str, Path]:
    """Each party's table of ``rows`` generated ratings as a Parquet dataset
    (made once, from the CSVs, and kept in ``cache``)."""
    csvs = ensure_data(cache, rows)
    found = {}
    for party, name in PARTIES.items():
        target = csvs / f"{party}.parquet"
        if not (target / "part-00000.parquet").exists():
            logger.info("converting %s to Parquet", csvs / name)
            csv_to_parquet(csvs / name, target, SHARD_ROWS)
        found[party] = target
    return found


def _alignment_seconds(log: Path) -> float:
    found = _ALIGNED.findall(log.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"{log} does not say how long the alignment took")
    return float(found[-1])


def run_scale_row(
    work: Path, rows: int, batch: int, timeout: float
) -> tuple[ScaleRow, RunResult]:
    """One size of the table, and its run (for the growth targets)."""
    tables = parquet_data(work / "data", rows)
    folder = work / "work" / f"{rows}-scale-parquet-b{batch}"
    configs = run_configs(folder, ensure_data(work / "data", rows), batch, 1)
    for party, table in tables.items():
        configs.edit(party, data={"path": str(table), "id_column": "ID"})
    logger.info("scale: %d rows from Parquet, batch %d", rows, batch)
    run = run_split(
        configs, rows, batch, 1, timeout, share_alignment=False, watch_engines=True
    )
    engines = {
        p: round(sum(run.engine_peak_mb.get(p, {}).values()), 1) for p in PARTIES
    }
    process = {p: round(run.peak_rss_mb[p], 1) for p in PARTIES}
    outputs = {p: folder / "runs" / p for p in PARTIES}
    row = ScaleRow(
        rows=rows,
        alignment_seconds=_alignment_seconds(folder / "logs" / "bob.log"),
        epoch_seconds=run.epoch_seconds,
        samples_per_second=run.samples_per_second,
        val_auc=run.val_auc,
        process_mb=process,
        engine_mb=engines,
        party_mb={p: round(process[p] + engines[p], 1) for p in PARTIES},
        engine_processes=run.engine_peak_mb,
        input_mb={p: round(_size_mb(t), 1) for p, t in tables.items()},
        output_mb={
            p: round(_size_mb(o), 1) if o.exists() else 0.0 for p, o in outputs.items()
        },
    )
    logger.info("%s", row)
    return row, run


@contextlib.contextmanager
def local_cluster(nodes: int = 2) -> Iterator[EngineConfig]:
    """A Ray cluster of ``nodes`` nodes of one CPU each on this machine (Ray's
    own multi-node test facility), while the block runs; yields the engine
    config that names it."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "node_ip_address": NODE_ADDRESS,
            "include_dashboard": False,
        },
    )
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1, node_ip_address=NODE_ADDRESS)
        yield EngineConfig(address=cluster.address, node_address=NODE_ADDRESS)
    finally:
        cluster.shutdown()


def run_engine_psi(ids: int) -> dict[str, PsiResult]:
    """PSI of ``ids`` IDs per party: on each party's process pool, on a local
    Ray instance, and on a two-node Ray cluster on this machine."""
    found = {"pool": run_psi(ids), "local": run_psi(ids, EngineConfig(min_rows=0))}
    with local_cluster() as engine:
        found["two-node"] = run_psi(ids, engine)
    return found


def _per_cpu(result: PsiResult) -> float:
    """IDs aligned per second per CPU (both parties' IDs)."""
    return 2 * result.ids_per_party / result.seconds / max(1, result.engine_cpus)


def scale_targets(rows: list[ScaleRow], psi: dict[str, PsiResult]) -> list[dict]:
    targets = []
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        sizes = [small.rows, large.rows]
        worst = max(large.party_mb[p] / small.party_mb[p] for p in PARTIES)
        targets.append(
            target(
                "scale: peak memory per party, largest / smallest size",
                worst,
                MEMORY_FACTOR,
                worst <= MEMORY_FACTOR,
                rows=sizes,
            )
        )
        linear = large.rows / small.rows * small.epoch_seconds
        ratio = large.epoch_seconds / linear
        targets.append(
            target(
                "scale: epoch seconds against linear from the smallest size",
                ratio,
                TIME_FACTOR,
                ratio <= TIME_FACTOR,
                rows=sizes,
            )
        )
    if "pool" in psi and "local" in psi:
        ratio = _per_cpu(psi["local"]) / _per_cpu(psi["pool"])
        targets.append(
            target(
                "scale: PSI IDs/s per CPU, local Ray engine / process pool",
                ratio,
                1.0,
                ratio >= 1.0,
                rows=psi["local"].ids_per_party,
            )
        )
    if "two-node" in psi:
        nodes = len(psi["two-node"].tasks_by_node)
        targets.append(
            target(
                "scale: nodes of the two-node cluster that ran PSI tasks",
                nodes,
                2,
                nodes >= 2,
                rows=psi["two-node"].ids_per_party,
            )
        )
    return targets


def format_scale_table(rows: list[ScaleRow], psi: dict[str, PsiResult]) -> str:
    header = (
        f"{'scale rows':>11}{'align s':>9}{'epoch s':>9}{'samples/s':>11}"
        f"{'alice MB':>10}{'(engine)':>10}{'bob MB':>9}{'(engine)':>10}"
        f"{'input MB':>10}{'output MB':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.rows:>11,}{r.alignment_seconds:>9.1f}{r.epoch_seconds:>9.1f}"
            f"{r.samples_per_second:>11,.0f}"
            f"{r.party_mb['alice']:>10.0f}{r.engine_mb['alice']:>10.0f}"
            f"{r.party_mb['bob']:>9.0f}{r.engine_mb['bob']:>10.0f}"
            f"{sum(r.input_mb.values()):>10.0f}{sum(r.output_mb.values()):>11.0f}"
        )
    if psi:
        lines += [
            "",
            f"{'PSI IDs/party':>14}{'engine':>10}{'CPUs':>6}{'seconds':>9}"
            f"{'IDs/s/CPU':>11}  tasks by node",
        ]
        for where, r in psi.items():
            nodes = ", ".join(f"{n[:8]}: {c}" for n, c in r.tasks_by_node.items())
            lines.append(
                f"{r.ids_per_party:>14,}{where:>10}{r.engine_cpus:>6}"
                f"{r.seconds:>9.1f}{_per_cpu(r):>11,.0f}  {nodes or '-'}"
            )
    return "\n".join(lines)


def scale_report(rows: list[ScaleRow], psi: dict[str, PsiResult]) -> dict:
    return {
        "rows": [asdict(r) for r in rows],
        "psi": {where: asdict(r) for where, r in psi.items()},
    }
