"""The peer service: hidden tensors in from feature parties, gradients back."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator

import grpc

from common.errors import InvalidMessageError, NotAllowedError, SplitRecError
from common.traffic import TrafficCounter
from party_server.authz import Authorizer
from party_server.label_job import LabelJob
from party_server.mailbox import END_OF_STREAM, Outbox
from party_server.party import Party
from party_server.status_codes import rpc_method
from splitrec.v1 import peer_pb2, peer_pb2_grpc

logger = logging.getLogger(__name__)

_POLL_SECONDS = 1.0


class PeerService(peer_pb2_grpc.PeerServicer):
    def __init__(self, party: Party, authorizer: Authorizer) -> None:
        self._party = party
        self._authorizer = authorizer

    @rpc_method
    def Exchange(  # noqa: N802 - gRPC method name
        self,
        request_iterator: Iterator[peer_pb2.PeerMessage],
        context: grpc.ServicerContext,
    ) -> Iterator[peer_pb2.PeerMessage]:
        traffic = self._party.traffic
        hello = self._hello(request_iterator, context)
        job = self._party.label_job(hello.job_id)
        outbox = job.open_stream(hello.party, hello)
        context.add_callback(outbox.close)
        reader = threading.Thread(
            target=_read_forwards,
            args=(request_iterator, job, hello, outbox, traffic),
            name=f"peer-in-{hello.party}",
            daemon=True,
        )
        reader.start()
        while context.is_active():
            try:
                item = outbox.get(_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is END_OF_STREAM:
                return
            if isinstance(item, Exception):
                raise item
            traffic.sent(item)
            yield item

    def _hello(
        self,
        request_iterator: Iterator[peer_pb2.PeerMessage],
        context: grpc.ServicerContext,
    ) -> peer_pb2.Hello:
        first = next(request_iterator, None)
        if first is not None:
            self._party.traffic.received(first)
        if first is None or first.WhichOneof("kind") != "hello":
            raise InvalidMessageError("a peer stream must start with a Hello message")
        hello = first.hello
        if not self._party.is_peer(hello.party):
            raise NotAllowedError(
                f"party {hello.party!r} is not a configured peer of "
                f"{self._party.config.party!r}"
            )
        refusal = self._authorizer.check_hello(context, hello.party)
        if refusal is not None:
            raise NotAllowedError(refusal)
        return hello


def _read_forwards(
    request_iterator: Iterator[peer_pb2.PeerMessage],
    job: LabelJob,
    hello: peer_pb2.Hello,
    outbox: Outbox,
    traffic: TrafficCounter,
) -> None:
    """Stores each incoming hidden tensor; a bad one ends the stream with its error."""
    try:
        for message in request_iterator:
            traffic.received(message)
            if message.WhichOneof("kind") != "forward":
                raise InvalidMessageError(
                    "expected Forward messages after Hello, got "
                    f"{message.WhichOneof('kind')}"
                )
            job.accept_forward(hello.party, hello, message.forward)
    except SplitRecError as exc:
        outbox.put(exc)
    except grpc.RpcError:
        logger.info("stream from %s was cancelled", hello.party)
    outbox.close()
