"""One benchmark run: the centralized baseline or the split job, in real processes.

Each process's peak resident memory comes from the kernel when it exits.

Split runs of one data set share its private ID alignment: the first run's
parties align (PSI) and leave their alignment cache; later runs of the same
job on the same files start from a copy of it, as a party restarted on
unchanged data does, so the benchmark times training, not alignment again
(alignment has its own ``psi`` table). A party checks the cache's key (the
job and every party's ID-column digest) and aligns again on any mismatch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitrec.bench.setup import ROOT
from splitrec.bench.shaper import LinkShape, Shaper
from splitrec.bench.tree_memory import TreeWatch
from splitrec.common.lifetime import child_environment
from splitrec.coordinator.local import start_party, wait_with_usage
from splitrec.coordinator.local_configs import LocalConfigs
from splitrec.party_server.alignment import CACHE_FILE

logger = logging.getLogger(__name__)

_MB = 1024 * 1024


@dataclass
class RunResult:
    mode: str
    rows: int
    batch_size: int
    pipeline_size: int
    samples_per_second: float
    epoch_seconds: float
    val_auc: float
    peak_rss_mb: dict[str, float]
    wire: dict = field(default_factory=dict)
    # Each party's engine processes (a local Ray instance), each one's peak MB.
    engine_peak_mb: dict[str, dict[str, float]] = field(default_factory=dict)


def _run_process(command: list[str], log: Path, timeout: float) -> float:
    """Runs a Python module to completion; returns its peak RSS in MB."""
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=child_environment(dict(os.environ)),  # it ends if this process does
        )
    exit_ = wait_with_usage(process, timeout)
    if exit_ is None:
        process.kill()
        wait_with_usage(process, 30.0)
        raise RuntimeError(
            f"{' '.join(command)} did not finish in {timeout:.0f} s; see {log}"
        )
    if exit_.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(command)} failed ({exit_.returncode}):\n{tail}")
    return exit_.peak_rss_bytes / _MB


def _history(path: Path) -> dict:
    """The last epoch of a history file; undefined values (null) become NaN."""
    last = json.loads(path.read_text())[-1]
    return {k: float("nan") if v is None else v for k, v in last.items()}


def run_centralized(
    configs: LocalConfigs, rows: int, batch: int, timeout: float
) -> RunResult:
    command = [
        "-m",
        "splitrec.baseline",
        "--job",
        str(configs.job),
        "--party",
        str(configs.alice),
    ]
    command += ["--party", str(configs.bob)]
    rss = _run_process(command, configs.folder / "centralized.log", timeout)
    job = configs.read("job")["job"]
    epoch = _history(configs.folder / "runs" / f"{job}-centralized" / "history.json")
    return RunResult(
        mode="centralized",
        rows=rows,
        batch_size=batch,
        pipeline_size=1,
        samples_per_second=epoch["steady_samples_per_second"],
        epoch_seconds=epoch["train_seconds"],
        val_auc=epoch["val_auc"],
        peak_rss_mb={"centralized": rss},
    )


def alignment_paths(configs: LocalConfigs) -> dict[str, tuple[Path, Path]]:
    """By party: where runs on its data file keep the job's shared alignment
    cache, and the party's own alignment cache in this run's output."""
    job = configs.read("job")["job"]
    paths = {}
    for name in configs.parties:
        party = configs.read(name)
        store = Path(party["data"]["path"]).parent / "alignments" / job
        cache = Path(party["output_dir"]) / job / CACHE_FILE
        paths[name] = (store / f"{name}.npz", cache)
    return paths


def _share_alignment(configs: LocalConfigs, keep: bool) -> None:
    """Before a run (``keep`` false): each party starts from its data's
    shared alignment if there is one. After it (``keep``): an alignment the
    run made becomes the shared one."""
    for store, cache in alignment_paths(configs).values():
        source, target = (cache, store) if keep else (store, cache)
        if source.exists() and not (keep and target.exists()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def find_run(
    runs: Sequence[RunResult], mode: str, rows: int, batch: int, pipeline: int = 1
) -> RunResult | None:
    """A run already made of ``mode`` with these rows, batch and pipeline size."""
    wanted = (mode, rows, batch, pipeline)
    return next(
        (r for r in runs if (r.mode, r.rows, r.batch_size, r.pipeline_size) == wanted),
        None,
    )


def run_split(
    configs: LocalConfigs,
    rows: int,
    batch: int,
    pipeline: int,
    timeout: float,
    link: LinkShape | None = None,
    cores: Mapping[str, int] | None = None,
    share_alignment: bool = True,
    watch_engines: bool = False,
) -> RunResult:
    """One split run. ``link``: each feature party reaches the label party
    through a shaper of that shape (both directions); ``cores``: a party runs
    pinned to that CPU (``taskset``), as if on a host of its own;
    ``share_alignment``: start from (and leave) the data's shared alignment;
    ``watch_engines``: read the peak memory of each party's child processes
    (its engine) while the job runs."""
    if share_alignment:
        _share_alignment(configs, keep=False)
    logs = configs.folder / "logs"
    # The label party first: every feature party is given its address.
    label = configs.read("job")["label_party"]
    started = {}
    watches: dict[str, TreeWatch] = {}
    shapers: list[Shaper] = []

    def start(name: str) -> None:
        path = configs.parties[name]
        prefix = ()
        if cores and name in cores:
            prefix = ("taskset", "-c", str(cores[name]))
        started[name] = start_party(
            path, logs / f"{name}.log", ready_timeout=timeout, prefix=prefix
        )
        if watch_engines:
            watches[name] = TreeWatch(started[name].process.pid).start()

    try:
        start(label)
        for name in configs.parties:
            if name != label:
                address = started[label].address
                if link is not None:
                    shapers.append(Shaper(address, up=link).start())
                    address = shapers[-1].address
                configs.point_at(name, label, address)
                start(name)
        configs.set_addresses({n: p.address for n, p in started.items()})
        command = ["-m", "splitrec.coordinator", "run", "--job", str(configs.job)]
        coordinator_rss = _run_process(
            command, configs.folder / "coordinator.log", timeout
        )
    finally:
        engines = {name: watch.stop() for name, watch in watches.items()}
        for party in started.values():
            party.stop()
        for shaper in shapers:
            shaper.stop()
    if share_alignment:
        _share_alignment(configs, keep=True)
    run_dir = configs.folder / "runs" / configs.read("job")["job"]
    epoch = _history(run_dir / "history.json")
    wire = json.loads((run_dir / "traffic.json").read_text())
    peaks = {
        name: party.exit.peak_rss_bytes / _MB if party.exit else 0.0
        for name, party in started.items()
    }
    return RunResult(
        mode="split",
        rows=rows,
        batch_size=batch,
        pipeline_size=pipeline,
        samples_per_second=epoch["steady_samples_per_second"],
        epoch_seconds=epoch["train_seconds"],
        val_auc=epoch["val_auc"],
        peak_rss_mb={**peaks, "coordinator": coordinator_rss},
        wire={k: v for k, v in wire.items() if k not in ("peer", "control")},
        engine_peak_mb=engines,
    )
