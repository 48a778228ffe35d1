"""A feature party's side of private ID alignment: one PSI stream to the label party.

The exchange, after hellos and the cache check (see ``psi_hub``):

1. each side sends its own IDs hashed and blinded with its key;
2. each side blinds the other's values again and sends them back in order, so
   each learns the doubly blinded value of each of its own IDs;
3. the label party sends the doubly blinded values of the rows every party
   holds, in ID order; this party finds them among its own and trains on
   those rows in that order.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np

from splitrec.common.batching import index_dtype
from splitrec.common.errors import HandshakeError, PeerError, SplitRecError
from splitrec.common.paths import confined
from splitrec.common.traffic import TrafficCounter
from splitrec.config.jobspec import JobSpec
from splitrec.config.party import PartyConfig
from splitrec.engine import Engine
from splitrec.party_server.alignment import (
    Alignment,
    in_id_order,
    read_cache,
    write_cache,
)
from splitrec.party_server.data_slice import DataSlice
from splitrec.party_server.psi_spool import (
    SPOOL_PREFIX,
    Buckets,
    ValueFile,
    bucket_count,
    holds_all,
    locate,
)
from splitrec.privacy import psi
from splitrec.v1 import peer_pb2, peer_pb2_grpc
from splitrec.wire import serde
from splitrec.wire.rpc import rpc_failure

logger = logging.getLogger(__name__)

_END = object()


class _Requests:
    """The request side of the stream: messages queued, sent by gRPC's thread.

    At most ``limit`` messages wait: a sender faster than the stream waits
    too (unless the stream was abandoned), so that values sent a chunk at a
    time are never all in memory.
    """

    def __init__(self, traffic: TrafficCounter, limit: int = 16) -> None:
        self._queue: queue.Queue = queue.Queue(limit)
        self._traffic = traffic
        self._abandoned = threading.Event()

    def put(self, message: peer_pb2.PsiMessage) -> None:
        self._traffic.sent(message)
        self._put(message)

    def _put(self, item: object) -> None:
        while not self._abandoned.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise PeerError("the PSI stream was abandoned")

    def close(self) -> None:
        self._put(_END)

    def abandon(self) -> None:
        """Ends every wait to send: the stream failed."""
        self._abandoned.set()

    def __iter__(self) -> Iterator[peer_pb2.PsiMessage]:
        while (item := self._queue.get()) is not _END:
            yield item


class _Sender:
    """Puts messages on the stream from a thread of its own (the own values go
    out while the label party's come in); ``join`` raises its failure."""

    def __init__(
        self, requests: _Requests, messages: Iterator[peer_pb2.PsiMessage]
    ) -> None:
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._send, args=(requests, messages), name="psi-send", daemon=True
        )
        self._thread.start()

    def _send(self, requests: _Requests, messages: Iterator) -> None:
        try:
            for message in messages:
                requests.put(message)
        except BaseException as exc:  # handed to join
            self._failure = exc

    def join(self) -> None:
        self._thread.join()
        if self._failure is not None:
            raise self._failure


def _cancel_when(call: grpc.Future, cancelled: Callable[[], bool]) -> None:
    while call.is_active():
        if cancelled():
            call.cancel()
            return
        time.sleep(0.5)


def _replies(
    call: Iterator, label: str, traffic: TrafficCounter
) -> Iterator[peer_pb2.PsiMessage]:
    """The label party's messages; a broken stream becomes a ``PeerError``."""
    try:
        for message in call:
            traffic.received(message)
            yield message
    except grpc.RpcError as exc:
        raise rpc_failure(
            f"party {label} ended the PSI stream", exc, "Intersect"
        ) from None


def _expect(replies: Iterator, kind: str, label: str) -> peer_pb2.PsiMessage:
    message = next(replies, None)
    if message is None:
        raise PeerError(f"party {label} closed the PSI stream before its {kind}")
    if message.WhichOneof("kind") != kind:
        raise PeerError(
            f"party {label} sent {message.WhichOneof('kind')} where the PSI "
            f"protocol expects {kind}"
        )
    return message


def align_with_label_party(
    channel: grpc.Channel,
    spec: JobSpec,
    config: PartyConfig,
    data: DataSlice,
    cancelled: Callable[[], bool] = lambda: False,
    traffic: TrafficCounter | None = None,
    attempt: str = "",
    engine: Engine | None = None,
) -> Alignment:
    """This party's rows of the intersection of every party's IDs, in ID order.

    ``cancelled`` (polled) abandons the stream: the coordinator's PrepareJob
    deadline bounds the whole alignment. The blinding runs on ``engine`` (by
    default a process pool of the party's own).
    """
    label = spec.label_party
    folder = confined(config.output_dir, spec.job_id)
    traffic = traffic if traffic is not None else TrafficCounter()
    requests = _Requests(traffic)
    call = peer_pb2_grpc.PeerStub(channel).Intersect(iter(requests))
    replies = _replies(call, label, traffic)
    watcher = threading.Thread(
        target=_cancel_when, args=(call, cancelled), daemon=True, name="psi-watch"
    )
    watcher.start()
    try:
        requests.put(
            peer_pb2.PsiMessage(
                hello=peer_pb2.PsiHello(
                    job_id=spec.job_id,
                    party=config.party,
                    count=data.num_rows,
                    id_digest=data.id_digest,
                    attempt=attempt,
                )
            )
        )
        theirs = _expect(replies, "hello", label).hello
        cached = read_cache(folder, theirs.cache_key)
        requests.put(
            peer_pb2.PsiMessage(cache=peer_pb2.PsiCache(has_cache=cached is not None))
        )
        if _expect(replies, "cache", label).cache.use_cache:
            assert cached is not None
            rows, was_cached = cached, True
        else:
            rows = _run_psi(
                requests, replies, data, theirs.count, label, folder, engine
            )
            was_cached = False
            write_cache(folder, theirs.cache_key, rows)
        requests.put(peer_pb2.PsiMessage(done=peer_pb2.PsiDone(rows=rows.size)))
        requests.close()
        for _ in replies:  # the label party ends the stream
            pass
    except BaseException:
        call.cancel()
        raise
    logger.info(
        "aligned with %s: %d of %d rows%s",
        label,
        rows.size,
        data.num_rows,
        " (cached)" if was_cached else "",
    )
    return Alignment(rows, was_cached)


def _run_psi(
    requests: _Requests,
    replies: Iterator,
    data: DataSlice,
    their_count: int,
    label: str,
    folder: Path,
    engine: Engine | None,
) -> np.ndarray:
    """The exchange, a chunk at a time: what must wait for the end is kept on
    disk (``psi_spool``), in a folder of the job's removed afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    count = bucket_count(max(data.num_rows, their_count))
    with (
        tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX, dir=folder) as spool_dir,
        psi.Blinder(psi.new_key(), engine=engine) as blinder,
    ):
        spool = Path(spool_dir)
        own_blinded = blinder.hash_and_blind_chunks(data.ids)
        sender = _Sender(
            requests,
            serde.psi_stream_to_proto("blinded", own_blinded, psi.POINT_BYTES),
        )
        try:
            their_file = ValueFile(spool / "theirs", psi.MATCH_BYTES)
            theirs = Buckets(spool, "theirs", psi.MATCH_BYTES, count)
            received = serde.psi_value_chunks(
                replies, "blinded", psi.POINT_BYTES, their_count
            )
            try:
                for double in blinder.blind_chunks(received, psi.MATCH_BYTES):
                    their_file.append(double)
                    theirs.add(double)
            except ValueError as exc:
                if isinstance(exc, SplitRecError):
                    raise
                raise PeerError(
                    f"party {label} sent unusable blinded values: {exc}"
                ) from None
            their_file.close()
            own = Buckets(spool, "own", psi.MATCH_BYTES, count)
            for chunk in serde.psi_value_chunks(
                replies, "double_blinded", psi.MATCH_BYTES, data.num_rows
            ):
                own.add(chunk)
            sender.join()
        except BaseException:
            requests.abandon()
            raise
        for message in serde.psi_stream_to_proto(
            "double_blinded",
            their_file.chunks(serde.PSI_CHUNK_VALUES),
            psi.MATCH_BYTES,
        ):
            requests.put(message)
        aligned = Buckets(spool, "aligned", psi.MATCH_BYTES, count)
        for chunk in serde.psi_value_chunks(replies, "aligned", psi.MATCH_BYTES):
            aligned.add(chunk)
        return _rows_of(aligned, own, theirs, data, label)


def _rows_of(
    aligned: Buckets,
    own: Buckets,
    theirs: Buckets,
    data: DataSlice,
    label: str,
) -> np.ndarray:
    """Positions of the aligned values among this party's rows, checked."""
    rows = locate(own, aligned)
    if (rows < 0).any():
        raise PeerError(f"party {label} named rows that this party does not hold")
    if not holds_all(theirs, aligned):
        raise PeerError(f"party {label} named rows outside our common IDs")
    rows = rows.astype(index_dtype(data.num_rows), copy=False)
    if not in_id_order(data, rows):
        raise HandshakeError(
            f"the aligned rows are not in ID order here; party {label} and this "
            "party must spell the same IDs the same way"
        )
    if rows.size == 0:
        raise HandshakeError(
            "no row ID is held by every party (empty intersection); check that the "
            "ID columns hold the same kind of key"
        )
    return rows
