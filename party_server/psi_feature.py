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
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import numpy as np

from splitrec.common.batching import index_dtype
from splitrec.common.errors import HandshakeError, PeerError
from splitrec.common.paths import confined
from splitrec.common.traffic import TrafficCounter
from splitrec.config.jobspec import JobSpec
from splitrec.config.party import PartyConfig
from splitrec.party_server.alignment import (
    Alignment,
    order_by_id,
    read_cache,
    write_cache,
)
from splitrec.party_server.data_slice import DataSlice
from splitrec.privacy import psi
from splitrec.v1 import peer_pb2, peer_pb2_grpc
from splitrec.wire import serde
from splitrec.wire.rpc import rpc_failure

logger = logging.getLogger(__name__)

_END = object()


class _Requests:
    """The request side of the stream: messages queued, sent by gRPC's thread."""

    def __init__(self, traffic: TrafficCounter) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._traffic = traffic

    def put(self, message: peer_pb2.PsiMessage) -> None:
        self._traffic.sent(message)
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[peer_pb2.PsiMessage]:
        while (item := self._queue.get()) is not _END:
            yield item


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
) -> Alignment:
    """This party's rows of the intersection of every party's IDs, in ID order.

    ``cancelled`` (polled) abandons the stream: the coordinator's PrepareJob
    deadline bounds the whole alignment.
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
            rows = _run_psi(requests, replies, data, theirs.count, label)
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
) -> np.ndarray:
    width = psi.POINT_BYTES
    with psi.Blinder(psi.new_key()) as blinder:
        own = blinder.hash_and_blind(data.ids)
        for message in serde.psi_values_to_proto("blinded", own, width):
            requests.put(message)
        theirs = serde.psi_values_from_proto(replies, "blinded", width, their_count)
        try:
            their_double = blinder.blind(theirs, psi.MATCH_BYTES)
        except ValueError as exc:
            raise PeerError(
                f"party {label} sent unusable blinded values: {exc}"
            ) from None
    for message in serde.psi_values_to_proto(
        "double_blinded", their_double, psi.MATCH_BYTES
    ):
        requests.put(message)
    own_double = psi.as_rows(
        serde.psi_values_from_proto(
            replies, "double_blinded", psi.MATCH_BYTES, data.num_rows
        ),
        psi.MATCH_BYTES,
    )
    aligned = psi.as_rows(
        serde.psi_values_from_proto(replies, "aligned", psi.MATCH_BYTES),
        psi.MATCH_BYTES,
    )
    return _rows_of(
        aligned, own_double, psi.as_rows(their_double, psi.MATCH_BYTES), data, label
    )


def _rows_of(
    aligned: np.ndarray,
    own_double: np.ndarray,
    their_double: np.ndarray,
    data: DataSlice,
    label: str,
) -> np.ndarray:
    """Positions of the aligned values among this party's rows, checked."""
    order = np.argsort(own_double)
    found = np.searchsorted(own_double, aligned, sorter=order)
    found = np.minimum(found, own_double.size - 1)
    rows = order[found] if own_double.size else np.zeros(0, dtype=np.int64)
    if aligned.size and not (own_double[rows] == aligned).all():
        raise PeerError(f"party {label} named rows that this party does not hold")
    if not np.isin(aligned, their_double).all():
        raise PeerError(f"party {label} named rows outside our common IDs")
    rows = rows.astype(index_dtype(data.num_rows))
    if not (order_by_id(data, rows) == rows).all():
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
