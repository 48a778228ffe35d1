"""The feature party's peer stream: replies, silence and refusals."""

from __future__ import annotations

import threading

import grpc
import pytest

from splitrec.common.errors import (
    DiskFullError,
    HandshakeError,
    InvalidMessageError,
    JobStateError,
    PeerError,
    UnknownJobError,
)
from splitrec.common.traffic import TrafficCounter
from splitrec.coordinator.failures import is_fatal
from splitrec.party_server.peer_client import PeerStream
from splitrec.party_server.status_codes import peer_failure, rpc_method, status_code
from splitrec.v1 import common_pb2, peer_pb2, peer_pb2_grpc
from splitrec.wire.rpc import create_channel, create_server


class _Peer(peer_pb2_grpc.PeerServicer):
    """Echoes forwards as backwards, stays silent, or refuses, by the hello's job."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def Exchange(self, request_iterator, context):  # noqa: N802
        hello = next(request_iterator).hello
        if hello.job_id == "refuse":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not a peer")
        for message in request_iterator:
            if hello.job_id == "silent":
                self.release.wait(10)
                return
            key = message.forward.key
            yield peer_pb2.PeerMessage(backward=peer_pb2.Backward(key=key))


@pytest.fixture
def peer():
    servicer = _Peer()
    server, port = create_server("127.0.0.1:0", None, max_workers=4)
    peer_pb2_grpc.add_PeerServicer_to_server(servicer, server)
    server.start()
    channel = create_channel(f"127.0.0.1:{port}", None)
    yield channel
    servicer.release.set()
    channel.close()
    server.stop(0)


def _stream(
    channel, job: str, timeout: float = 5.0
) -> tuple[PeerStream, TrafficCounter]:
    traffic = TrafficCounter()
    hello = peer_pb2.Hello(job_id=job, party="alice", phase=common_pb2.PHASE_TRAIN)
    return PeerStream(channel, "bob", hello, traffic, timeout), traffic


def _forward(step: int) -> peer_pb2.PeerMessage:
    key = common_pb2.StepKey(job_id="j", epoch=0, step=step)
    return peer_pb2.PeerMessage(forward=peer_pb2.Forward(key=key))


def test_replies_come_back_in_order_and_are_counted(peer):
    stream, traffic = _stream(peer, "echo")
    for step in range(3):
        stream.send(_forward(step))
        assert stream.receive().backward.key.step == step
    stream.close()
    counted = traffic.snapshot()
    assert (counted.messages_sent, counted.messages_received) == (4, 3)


def test_a_silent_peer_times_out_with_a_clear_error(peer):
    stream, _ = _stream(peer, "silent", timeout=1.0)
    stream.send(_forward(0))
    with pytest.raises(PeerError, match="no reply from bob within 1 s"):
        stream.receive()


def test_a_refusal_names_the_status(peer):
    stream, _ = _stream(peer, "refuse")
    with pytest.raises(PeerError, match="PERMISSION_DENIED: not a peer"):
        stream.receive()


class _Refusing(peer_pb2_grpc.PeerServicer):
    """Fails every stream with a domain error, as a party's servicer does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @rpc_method
    def Exchange(self, request_iterator, context):  # noqa: N802
        next(request_iterator)
        raise self.error
        yield  # a streaming method


def _refused_by(error: Exception) -> PeerError:
    """The ``PeerError`` a party gets from a peer that fails with ``error``."""
    server, port = create_server("127.0.0.1:0", None, max_workers=2)
    peer_pb2_grpc.add_PeerServicer_to_server(_Refusing(error), server)
    server.start()
    channel = create_channel(f"127.0.0.1:{port}", None)
    try:
        stream, _ = _stream(channel, "j")
        with pytest.raises(PeerError) as caught:
            stream.receive()
        return caught.value
    finally:
        channel.close()
        server.stop(0)


@pytest.mark.parametrize(
    ("error", "code", "permanent"),
    [
        (HandshakeError("state.npz of epoch-1 does not fit"), "FAILED_PRECONDITION", 1),
        (InvalidMessageError("step 3: NaN"), "INVALID_ARGUMENT", 1),
        (JobStateError("the pass was cancelled"), "FAILED_PRECONDITION", 0),
        (UnknownJobError("no job 'j'"), "UNAVAILABLE", 0),
        (DiskFullError("no space left"), "UNAVAILABLE", 1),
        (PeerError("carol went away", "UNAVAILABLE"), "UNAVAILABLE", 0),
    ],
)
def test_a_peer_refusal_reaches_the_coordinator_as_what_it_is(error, code, permanent):
    refused = _refused_by(error)

    assert str(error) in str(refused)
    assert refused.permanent == bool(permanent)
    # This party's own answer, for the call that needed the peer.
    assert status_code(refused).name == code
    relayed = peer_failure("PSI with party alice failed", refused)
    assert (relayed.code, relayed.permanent) == (code, bool(permanent))
    assert is_fatal(relayed) == bool(permanent)


def test_a_peer_error_without_a_relayed_code_is_unavailable():
    # Online scoring: a feature party's refusal of Embed is not the caller's.
    embed = PeerError("party alice did not answer Embed: PERMISSION_DENIED: no")

    assert status_code(embed) == grpc.StatusCode.UNAVAILABLE
