"""The peer service: hidden tensors in from feature parties, gradients back."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator

import grpc

from splitrec.common.errors import (
    ConfigError,
    InvalidMessageError,
    JobStateError,
    NotAllowedError,
    SplitRecError,
)
from splitrec.common.traffic import TrafficCounter
from splitrec.config.party import PartyRole
from splitrec.party_server.authz import Authorizer
from splitrec.party_server.label_job import LabelJob
from splitrec.party_server.mailbox import END_OF_STREAM, Inbound
from splitrec.party_server.part_serving import FeatureServing, PartServing
from splitrec.party_server.party import Party, check_job_id
from splitrec.party_server.status_codes import rpc_method
from splitrec.v1 import common_pb2, peer_pb2, peer_pb2_grpc
from splitrec.wire import serde

logger = logging.getLogger(__name__)

_POLL_SECONDS = 1.0


class PeerService(peer_pb2_grpc.PeerServicer):
    def __init__(
        self,
        party: Party,
        authorizer: Authorizer,
        serving: PartServing | None = None,
    ) -> None:
        self._party = party
        self._authorizer = authorizer
        self._serving = serving

    def _feature_serving(
        self, context: grpc.ServicerContext, caller: str
    ) -> FeatureServing:
        """The party's feature serving, for a caller whose certificate is the
        party it says it is."""
        serving = self._serving
        if not isinstance(serving, FeatureServing):
            raise ConfigError(
                f"party {self._party.config.party} serves no feature outputs (no "
                "serving section in its config, or it is the label party)"
            )
        refusal = self._authorizer.check_hello(context, caller)
        if refusal is not None:
            raise NotAllowedError(refusal)
        return serving

    @rpc_method
    def Embed(  # noqa: N802 - gRPC method name
        self, request: peer_pb2.EmbedRequest, context: grpc.ServicerContext
    ) -> peer_pb2.EmbedResponse:
        serving = self._feature_serving(context, request.party)
        embedded = serving.embed(
            request.job_id, request.version, request.party, list(request.keys)
        )
        return serde.embed_reply_to_proto(embedded)

    @rpc_method
    def PushOutputs(  # noqa: N802 - gRPC method name
        self, request: peer_pb2.PushRequest, context: grpc.ServicerContext
    ) -> Iterator[peer_pb2.PushChunk]:
        serving = self._feature_serving(context, request.party)
        for chunk in serving.pushed(request.job_id, request.version, request.party):
            yield serde.pushed_to_proto(chunk)

    @rpc_method
    def PrepareServing(  # noqa: N802 - gRPC method name
        self, request: peer_pb2.PrepareServingRequest, context: grpc.ServicerContext
    ) -> peer_pb2.PrepareServingResponse:
        serving = self._feature_serving(context, request.party)
        served = serving.prepare_version(request.job_id, request.version, request.party)
        return serde.prepared_serving_to_proto(
            served.model.digest, len(served.table), served.model.export
        )

    @rpc_method
    def Exchange(  # noqa: N802 - gRPC method name
        self,
        request_iterator: Iterator[peer_pb2.PeerMessage],
        context: grpc.ServicerContext,
    ) -> Iterator[peer_pb2.PeerMessage]:
        traffic = self._party.traffic
        hello = self._hello(request_iterator, context)
        job = self._party.label_job(hello.job_id)
        stream = job.open_stream(hello.party, hello)
        outbox = stream.outbox
        context.add_callback(outbox.close)
        reader = threading.Thread(
            target=_read_forwards,
            args=(request_iterator, job, hello, stream, traffic),
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

    @rpc_method
    def Intersect(  # noqa: N802 - gRPC method name
        self,
        request_iterator: Iterator[peer_pb2.PsiMessage],
        context: grpc.ServicerContext,
    ) -> Iterator[peer_pb2.PsiMessage]:
        traffic = self._party.traffic
        requests = _counted(request_iterator, traffic)
        first = next(requests, None)
        if first is None or first.WhichOneof("kind") != "hello":
            raise InvalidMessageError("a PSI stream must start with a PsiHello message")
        hello = first.hello
        self._check_peer(context, hello.party)
        check_job_id(hello.job_id)
        if self._party.config.role is not PartyRole.LABEL:
            raise NotAllowedError(
                f"party {self._party.config.party} is a feature party; a PSI stream "
                "goes to the job's label party"
            )
        session = self._party.psi_hub.session(
            hello.job_id,
            hello.attempt,
            timeout=30.0,
            cancelled=lambda: not context.is_active(),
        )
        if hello.party not in session.expected:
            raise NotAllowedError(
                f"party {hello.party!r} is not a feature party of job {hello.job_id!r}"
            )
        for message in session.serve(hello, requests):
            traffic.sent(message)
            yield message

    def _check_peer(self, context: grpc.ServicerContext, party: str) -> None:
        if not self._party.is_peer(party):
            raise NotAllowedError(
                f"party {party!r} is not a configured peer of "
                f"{self._party.config.party!r}"
            )
        refusal = self._authorizer.check_hello(context, party)
        if refusal is not None:
            raise NotAllowedError(refusal)

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
        self._check_peer(context, hello.party)
        return hello


def _read_forwards(
    request_iterator: Iterator[peer_pb2.PeerMessage],
    job: LabelJob,
    hello: peer_pb2.Hello,
    stream: Inbound,
    traffic: TrafficCounter,
) -> None:
    """Stores each incoming hidden tensor; a bad one ends the stream with its
    error. What a failed or cancelled stream stored and no step took is dropped,
    as is what a training stream left when it ended (its sender ends it only
    after the gradient of its last step)."""
    outbox = stream.outbox
    try:
        for message in request_iterator:
            traffic.received(message)
            if message.WhichOneof("kind") == "key_share":
                outbox.put(
                    job.accept_share(hello.party, message.key_share, outbox.is_closed)
                )
                continue
            if message.WhichOneof("kind") != "forward":
                raise InvalidMessageError(
                    "expected Forward messages after Hello, got "
                    f"{message.WhichOneof('kind')}"
                )
            job.accept_forward(stream, hello, message.forward)
    except SplitRecError as exc:
        outbox.put(exc)
        job.mailbox.drop(stream)
    except grpc.RpcError:
        logger.info("stream from %s was cancelled", hello.party)
        job.mailbox.drop(stream)
    else:
        if hello.phase == common_pb2.PHASE_TRAIN:
            left = job.mailbox.drop(stream)
            if left:
                _, epoch, step = left[0]
                outbox.put(
                    JobStateError(
                        f"the training stream of {hello.party} ended before epoch "
                        f"{epoch} step {step} was trained; its {len(left)} hidden "
                        "tensor(s) not yet used were dropped"
                    )
                )
    outbox.close()


def _counted(
    messages: Iterator[peer_pb2.PsiMessage], traffic: TrafficCounter
) -> Iterator[peer_pb2.PsiMessage]:
    for message in messages:
        traffic.received(message)
        yield message
