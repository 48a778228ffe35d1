"""Private ID alignment timed: two parties, ``n`` IDs each, half of them shared.

The label party's hub and the feature party's client run the real protocol over
a gRPC stream on loopback, each with its own pool of worker processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from splitrec.common.traffic import TrafficCounter
from splitrec.config.engine import EngineConfig
from splitrec.config.jobspec import JobParty, JobSpec, OutputSpec
from splitrec.config.party import PartyConfig, PartyRole
from splitrec.engine import PartyEngine
from splitrec.party_server.data_slice import DataSlice, id_digest
from splitrec.party_server.psi_feature import align_with_label_party
from splitrec.party_server.psi_hub import HubSession
from splitrec.party_server.row_store import IdColumn
from splitrec.v1 import peer_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PsiResult:
    ids_per_party: int
    intersection: int
    seconds: float
    feature_bytes_sent: int
    label_bytes_sent: int
    # Where the blinding ran: "pool" (each party's own processes) or "ray",
    # with the CPUs it had and how many tasks each of its nodes ran.
    engine: str = "pool"
    engine_cpus: int = 0
    tasks_by_node: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_per_id(self) -> float:
        total = self.feature_bytes_sent + self.label_bytes_sent
        return total / (2 * self.ids_per_party)


class _Hub(peer_pb2_grpc.PeerServicer):
    def __init__(self, session: HubSession) -> None:
        self.session = session

    def Intersect(  # noqa: N802 - gRPC method name
        self, request_iterator: Iterator, context: grpc.ServicerContext
    ) -> Iterator:
        first = next(request_iterator)
        yield from self.session.serve(first.hello, request_iterator)


def _party(name: str, folder: Path, ids: np.ndarray) -> tuple[PartyConfig, DataSlice]:
    # PSI reads only the party's name and IDs: a config without data or model,
    # which a config file could not be, so it is built without validation.
    config = PartyConfig.model_construct(
        party=name,
        listen="127.0.0.1:0",
        data=None,
        features=(),
        model=None,
        peers=(),
        output_dir=folder / name,
    )
    return config, DataSlice(IdColumn.of(ids), None, None, id_digest(ids))


@dataclass(frozen=True)
class PairAlignment:
    """Both parties' aligned rows, and what the alignment cost."""

    alice_rows: np.ndarray
    bob_rows: np.ndarray
    seconds: float
    alice_sent: int
    bob_sent: int
    engine: str
    engine_cpus: int
    tasks_by_node: dict[str, int]


def align_pair(
    alice_ids: np.ndarray, bob_ids: np.ndarray, engine: EngineConfig | None = None
) -> PairAlignment:
    """The real protocol between alice's client and bob's hub over loopback,
    in this process. With ``engine`` both blind on that Ray engine (one
    connection: the parties share this process), else each on a process pool
    of its own."""
    output = OutputSpec(32, 8)
    spec = JobSpec(
        job_id="psi-bench",
        seed=1,
        batch_size=1,
        epochs=1,
        optimizer="adam",
        learning_rate=0.001,
        validation_fraction=0.1,
        label_party="bob",
        parties=(
            JobParty("alice", PartyRole.FEATURE, output),
            JobParty("bob", PartyRole.LABEL, output),
        ),
    )
    chosen = PartyEngine(engine, "the PSI benchmark") if engine else None
    with tempfile.TemporaryDirectory() as work, contextlib.ExitStack() as stack:
        if chosen is not None:
            stack.callback(chosen.close)
        size = max(len(alice_ids), len(bob_ids))
        ray = chosen.for_rows(size) if chosen is not None else None
        alice, alice_data = _party("alice", Path(work), alice_ids)
        bob, bob_data = _party("bob", Path(work), bob_ids)
        session = HubSession(spec, bob, bob_data, 600.0, engine=ray)
        server = grpc.server(futures.ThreadPoolExecutor(4))
        peer_pb2_grpc.add_PeerServicer_to_server(_Hub(session), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        traffic = TrafficCounter()
        hub_result: list = []
        started = time.monotonic()
        hub = threading.Thread(
            target=lambda: hub_result.append(session.run(lambda: False))
        )
        hub.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                aligned = align_with_label_party(
                    channel, spec, alice, alice_data, traffic=traffic, engine=ray
                )
            hub.join()
        finally:
            server.stop(0)
        seconds = time.monotonic() - started
        cpus = ray.workers if ray is not None else (os.cpu_count() or 1)
        tasks = dict(ray.tasks_by_node) if ray is not None else {}
    if not hub_result:
        raise RuntimeError("bob's side of the alignment failed (see the log)")
    counted = traffic.snapshot()
    return PairAlignment(
        aligned.rows,
        hub_result[0].rows,
        seconds,
        counted.bytes_sent,
        counted.bytes_received,
        "ray" if ray is not None else "pool",
        cpus,
        tasks,
    )


def run_psi(n: int, engine: EngineConfig | None = None) -> PsiResult:
    """Aligns ``n`` IDs at each of two parties (IDs n/2..3n/2 are shared); on
    ``engine`` (see ``align_pair``) or each party's own pool."""
    alice_ids = np.array([f"{i}" for i in range(n)])
    bob_ids = np.array([f"{i}" for i in range(n // 2, n + n // 2)])
    pair = align_pair(alice_ids, bob_ids, engine)
    assert pair.alice_rows.size == pair.bob_rows.size
    return PsiResult(
        n,
        int(pair.alice_rows.size),
        pair.seconds,
        pair.alice_sent,
        pair.bob_sent,
        pair.engine,
        pair.engine_cpus,
        pair.tasks_by_node,
    )
