"""Helpers for tests: generated data, configs rewritten for a temp folder, servers."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from splitrec.common.history import TASK_METRICS
from splitrec.coordinator.local_configs import LocalConfigs
from splitrec.datasets.movielens.prepare import prepare_generated

ROOT = Path(__file__).resolve().parent.parent
# The metrics each epoch of a job's history.json holds.
HISTORY_METRICS = TASK_METRICS


def metrics(row: dict) -> dict:
    """An epoch's metrics from a history.json row."""
    return {k: row[k] for k in HISTORY_METRICS}


def run_module(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs ``python -m <args>`` from the project root; output captured as text."""

    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


CONFIGS = ROOT / "configs"


def generate_party_csvs(
    folder: Path, num_ratings: int, layouts: tuple[str, ...] = ("reference",)
) -> Path:
    """Generated ml-1m files turned into alice's and bob's CSVs of each layout,
    as ``make data`` (``LAYOUT=...``)."""
    for layout in layouts:
        prepare_generated(folder, num_ratings, seed=7, layout=layout)
    return folder


def misaligned_copy(
    source: Path, folder: Path, seed: int = 11, id_format: str = "{}"
) -> tuple[Path, int]:
    """The party CSVs of ``source`` as two companies would really hold them.

    alice lacks the first 2,000 rows and holds 1,000 rows of her own; bob lacks
    the last 1,500 and holds 500 of his own; each file is shuffled differently.
    ``id_format`` rewrites each numeric ID. Returns the folder and how many IDs
    both hold.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    plans = {"alice": (2000, None, 1000, 900_000), "bob": (0, -1500, 500, 800_000)}
    for name, (start, stop, extra, first_new) in plans.items():
        header, *rows = (source / f"{name}_ml1m.csv").read_text().splitlines()
        kept = rows[start:stop]
        for i in range(extra):
            _, rest = rows[i].split(",", 1)
            kept.append(f"{first_new + i},{rest}")
        kept = [
            id_format.format(int(key)) + "," + rest
            for key, rest in (row.split(",", 1) for row in kept)
        ]
        rng.shuffle(kept)
        text = "\n".join([header, *kept]) + "\n"
        (folder / f"{name}_ml1m.csv").write_text(text)
    common = len(rows) - 2000 - 1500
    return folder, common


# The tests' name for a folder of configs; timeouts short enough for tests.
PartyFiles = LocalConfigs


def job_with_privacy(folder: Path, privacy: dict) -> Path:
    """The example job config (TLS off) with ``privacy`` as its privacy
    section, written to ``folder/job.yaml``."""
    job = yaml.safe_load((ROOT / "configs" / "job.yaml").read_text())
    job.update(privacy=privacy, tls={"insecure": True})
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def write_configs(
    folder: Path, data_dir: Path, certs: Path | None = None, layout: str = "reference"
) -> PartyFiles:
    """The repository's example configs (of a data ``layout``), pointed at
    ``data_dir`` and a temp runs dir.

    With ``certs`` every process uses mutual TLS; without, TLS is off. The
    parties export no model at the end (``export: none``) unless a test asks.
    """
    return LocalConfigs.write(
        folder,
        data_dir,
        certs,
        layout,
        connect_timeout=20,
        rpc_timeout=60,
        export="none",
    )


def three_party_configs(
    folder: Path,
    data_dir: Path,
    certs: Path | None = None,
    aggregation: object = None,
    **job_changes: object,
) -> PartyFiles:
    """The three-party example configs; bob's fuse aggregates as
    ``aggregation`` says (the example's secure sum when None). The parties get
    their ports when they start (``start_local_parties``, ``running_parties``)."""
    files = write_configs(folder, data_dir, certs, layout="three-party")
    if job_changes:
        files.edit("job", **job_changes)
    if aggregation is not None:
        model = {**files.read("bob")["model"], "aggregation": aggregation}
        files.edit("bob", model=model)
    return files


def run_demo(
    files: PartyFiles, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``coordinator demo`` of ``files`` (after ``-m``: ``demo_args``, then
    ``args``) on ports picked ahead; run again on fresh ports when a party
    could not bind its own (see ``start_federation``)."""
    from splitrec.coordinator.local import START_ATTEMPTS, bind_failed, pick_addresses

    for _ in range(START_ATTEMPTS):
        pick_addresses(files)
        result = run_module([*demo_args(files), *args], timeout=timeout)
        if not bind_failed(result.stderr):
            break
    return result


@contextmanager
def refused_address() -> Iterator[str]:
    """A loopback address that refuses connections while the block runs: its
    socket is bound, so no other process can take the port, but never listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def running_parties(
    files: PartyFiles,
    peer_timeout: float = 30.0,
    before: Callable[[str], None] | None = None,
) -> Iterator[dict]:
    """Starts every party as an in-process server, the label party first, on
    free loopback ports written into every config (see ``start_federation``);
    ``before(name)`` runs just before a party starts (to edit its config)."""
    from splitrec.config.party import load_party_config
    from splitrec.coordinator.local import start_federation
    from splitrec.party_server.server import start_party

    def start(name: str, config: Path):
        if before is not None:
            before(name)
        return start_party(load_party_config(config), peer_timeout=peer_timeout)

    started = start_federation(files, start)
    try:
        yield started
    finally:
        for party in started.values():
            party.stop(grace=1.0)


def train_first_epoch(parties: dict, files: PartyFiles) -> tuple[float, object]:
    """Trains epoch 1 of the job of ``files`` in one window on ``parties``
    (running, see ``running_parties``) and evaluates it: the validation AUC and
    alice's job (her model, status and pipeline choices)."""
    from concurrent.futures import ThreadPoolExecutor

    from splitrec.config.job import load_job_config
    from splitrec.coordinator.client import PartyClient
    from splitrec.coordinator.handshake import handshake
    from splitrec.coordinator.windows import Window, run_window

    config = load_job_config(files.job)
    clients = {p.name: PartyClient(p.name, p.address, 60.0) for p in config.parties}
    try:
        prepared = handshake(config, clients)
        window = Window(config.job, 0, 0, prepared.steps_per_epoch, 50)
        run_window(clients, "bob", window, lambda _: None, 120.0)
        with ThreadPoolExecutor(2) as pool:
            calls = {
                n: pool.submit(c.evaluate, config.job, 0, "validation")
                for n, c in clients.items()
            }
            _, metrics = calls["bob"].result()
            calls["alice"].result()
    finally:
        for client in clients.values():
            client.close()
    return metrics.auc, parties["alice"].party.job(config.job)


@contextmanager
def prepared_federation(
    files: PartyFiles, peer_timeout: float = 30.0
) -> Iterator[tuple[dict, object, dict]]:
    """Both parties up and the job prepared: (parties, job config, clients)."""
    from splitrec.config.job import load_job_config
    from splitrec.coordinator.client import PartyClient
    from splitrec.coordinator.handshake import handshake
    from splitrec.security.tls import load_credentials

    with running_parties(files, peer_timeout=peer_timeout) as parties:
        config = load_job_config(files.job)
        credentials = load_credentials(config.tls)
        clients = {
            p.name: PartyClient(
                p.name, p.address, 30.0, credentials, p.expected_identity
            )
            for p in config.parties
        }
        try:
            handshake(config, clients)
            yield parties, config, clients
        finally:
            for client in clients.values():
                client.close()


def demo_args(files: LocalConfigs) -> list[str]:
    """``coordinator demo`` for a folder of configs (after ``-m``)."""
    return [
        "splitrec.coordinator",
        "demo",
        "--job",
        str(files.job),
        "--party",
        str(files.alice),
        "--party",
        str(files.bob),
    ]


def start_coordinator(job: Path, *args: str) -> subprocess.Popen:
    """``splitrec run --job JOB ARGS`` in the background; its
    stdout and stderr are captured as text."""

    return subprocess.Popen(
        [sys.executable, "-m", "splitrec.coordinator", "run", "--job", str(job), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def party_status(address: str, timeout: float = 5.0):
    """The party's ``GetStatus`` reply over a plaintext channel, or ``None``
    when it does not answer."""
    import grpc

    from splitrec.v1 import control_pb2, control_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            stub = control_pb2_grpc.ControlStub(channel)
            return stub.GetStatus(control_pb2.StatusRequest(), timeout=timeout)
    except grpc.RpcError:
        return None


def wait_for_training_step(address: str, step: int, timeout: float = 120) -> None:
    """Returns once the first epoch's training has passed ``step``. Only while
    training: between windows the newest checkpoint may not be committed yet,
    and a kill then restores the one before."""
    import pytest

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status = party_status(address)
        if (
            status
            and status.state == "training"
            and status.epoch == 0
            and status.step >= step
        ):
            return
        if status:
            last = (status.state, status.epoch, status.step)
        time.sleep(0.02)
    pytest.fail(f"training never reached step {step} (last seen: {last})")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        if fields is not None:
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command's name (state,
    parent, ..., start time at index 19); None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def wait_until(ready: Callable[[], bool], timeout: float = 120.0) -> None:
    """Waits for ``ready()`` to hold; ``timeout`` only catches a hang."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout:.0f} s: {ready}")
        time.sleep(0.1)


def epoch_record(epoch: int, val_auc: float, **changes: object):
    """An epoch's record with plain figures, ``val_auc`` and ``changes`` set."""
    from splitrec.common.history import EpochRecord

    figures = {
        "epoch": epoch,
        "train_loss": 0.6,
        "train_auc": 0.6,
        "val_loss": 0.5,
        "val_auc": val_auc,
        "val_precision": 0.5,
        "val_recall": 0.5,
        "samples_per_second": 100.0,
        "steady_samples_per_second": 110.0,
        "train_seconds": 1.0,
    }
    return EpochRecord(**{**figures, **changes})
