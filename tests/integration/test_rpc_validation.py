"""Bad messages get the right gRPC status and a readable message; nothing breaks."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time

import grpc
import numpy as np
import pytest

from splitrec.common.errors import PeerError
from splitrec.coordinator.handshake import describe_all, job_spec
from splitrec.coordinator.windows import Window, run_window
from splitrec.security.tls import TlsConfig, load_credentials
from splitrec.v1 import (
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    peer_pb2,
    peer_pb2_grpc,
    tensor_pb2,
)
from splitrec.wire.rpc import MAX_MESSAGE_BYTES, create_channel
from splitrec.wire.serde import tensor_to_proto
from tests.support import prepared_federation

WIDTH = 32 + 8 + 2


@pytest.fixture
def prepared(party_files):
    """Both parties up, the job prepared; yields (parties, job config, clients)."""
    party_files.edit("job", batch_size=64)
    with prepared_federation(party_files, peer_timeout=5.0) as federation:
        yield federation


def _exchange(address: str, messages: list[peer_pb2.PeerMessage]) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        stub = peer_pb2_grpc.PeerStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Exchange(iter(messages), timeout=20))
    return caught.value


def _hello(job: str, party: str = "alice", phase: int = common_pb2.PHASE_TRAIN):
    return peer_pb2.PeerMessage(
        hello=peer_pb2.Hello(job_id=job, party=party, phase=phase)
    )


def _forward(
    job: str,
    step: int,
    hidden: np.ndarray,
    epoch: int = 0,
    phase: int = common_pb2.PHASE_TRAIN,
) -> peer_pb2.PeerMessage:
    key = common_pb2.StepKey(job_id=job, phase=phase, epoch=epoch, step=step)
    return peer_pb2.PeerMessage(
        forward=peer_pb2.Forward(key=key, hidden=tensor_to_proto(hidden))
    )


def _cases(job: str) -> list[tuple[str, list, grpc.StatusCode, str]]:
    good = np.zeros((64, WIDTH), np.float32)
    nan = good.copy()
    nan[3, 5] = np.nan
    bad_bytes = tensor_to_proto(good)
    bad_bytes.data = bad_bytes.data[:-4]
    return [
        (
            "no hello",
            [_forward(job, 0, good)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Hello",
        ),
        (
            "not a peer",
            [_hello(job, party="mallory")],
            grpc.StatusCode.PERMISSION_DENIED,
            "'mallory' is not a configured peer",
        ),
        ("unknown job", [_hello("nope")], grpc.StatusCode.NOT_FOUND, "no job 'nope'"),
        (
            "wrong width",
            [_hello(job), _forward(job, 0, np.zeros((64, 7), np.float32))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "expected shape (64, 42), got (64, 7)",
        ),
        (
            "wrong batch rows",
            [_hello(job), _forward(job, 0, np.zeros((63, WIDTH), np.float32))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "expected shape (64, 42)",
        ),
        (
            "wrong dtype",
            [_hello(job), _forward(job, 0, good.astype(np.float64))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "",
        ),
        (
            "NaN values",
            [_hello(job), _forward(job, 0, nan)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "NaN or infinite",
        ),
        (
            "byte length",
            [
                _hello(job),
                peer_pb2.PeerMessage(
                    forward=peer_pb2.Forward(
                        key=_forward(job, 0, good).forward.key, hidden=bad_bytes
                    )
                ),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "needs 10752 bytes, got 10748",
        ),
        (
            "key share in a plain job",
            [
                _hello(job),
                peer_pb2.PeerMessage(
                    key_share=peer_pb2.KeyShare(
                        job_id=job, party="alice", public_key=bytes(32)
                    )
                ),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "does not aggregate securely",
        ),
        (
            "masked tensor in a plain job",
            [
                _hello(job),
                peer_pb2.PeerMessage(
                    forward=peer_pb2.Forward(
                        key=_forward(job, 0, good).forward.key,
                        masked=peer_pb2.MaskedTensor(
                            values=tensor_to_proto(
                                good.view(np.uint32).astype(np.uint64)
                            )
                        ),
                    )
                ),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "masked, but this job does not aggregate securely",
        ),
        (
            "far future step",
            [_hello(job), _forward(job, 10_000, good)],
            grpc.StatusCode.FAILED_PRECONDITION,
            "step 10000 is outside",
        ),
    ]


def test_bad_peer_messages_are_refused_and_training_still_works(prepared):
    parties, config, clients = prepared
    bob_address = f"127.0.0.1:{parties['bob'].port}"
    for name, messages, code, text in _cases(config.job):
        error = _exchange(bob_address, messages)
        assert error.code() == code, (name, error.code(), error.details())
        assert text in error.details(), (name, error.details())

    last = run_window(
        clients, "bob", Window(config.job, 0, 0, 5, 5), lambda _: None, 30.0
    )["bob"]

    assert last.next_step == 5
    assert last.has_metrics and np.isfinite(last.metrics.loss)


def test_forward_with_wrong_dtype_names_the_dtype(prepared):
    # float64 of the right shape has the wrong byte length for float32 nowhere: the
    # tensor is decoded as float64 and its shape checked, so the message is about
    # dtype or shape; the server must still refuse it without storing it.
    parties, config, _ = prepared
    bob_address = f"127.0.0.1:{parties['bob'].port}"
    good = np.zeros((64, WIDTH), np.float64)
    error = _exchange(bob_address, [_hello(config.job), _forward(config.job, 0, good)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "float" in error.details()


def test_control_rpcs_refuse_unknown_jobs_and_bad_windows(prepared):
    parties, config, clients = prepared
    owner = clients["alice"].owner.token
    with grpc.insecure_channel(f"127.0.0.1:{parties['alice'].port}") as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        with pytest.raises(grpc.RpcError) as unknown:
            list(
                stub.RunSteps(
                    control_pb2.RunStepsRequest(job_id="nope", num_steps=1), timeout=10
                )
            )
        window = control_pb2.RunStepsRequest(
            job_id=config.job, epoch=0, first_step=0, num_steps=10_000, owner=owner
        )
        with pytest.raises(grpc.RpcError) as outside:
            list(stub.RunSteps(window, timeout=10))
        with pytest.raises(grpc.RpcError) as bad_split:
            stub.Evaluate(
                control_pb2.EvaluateRequest(job_id=config.job, owner=owner), timeout=10
            )
        with pytest.raises(grpc.RpcError) as stranger:
            list(stub.RunSteps(control_pb2.RunStepsRequest(job_id=config.job)))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "holds no job 'nope'" in unknown.value.details()
    assert outside.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "outside the epoch" in outside.value.details()
    assert bad_split.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A call without the holder's token is another coordinator's.
    assert stranger.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "this call comes from another coordinator" in stranger.value.details()


def test_infinite_values_oversize_messages_and_past_steps(prepared):
    parties, config, clients = prepared
    bob_address = f"127.0.0.1:{parties['bob'].port}"
    run_window(clients, "bob", Window(config.job, 0, 0, 3, 3), lambda _: None, 30.0)
    good = np.zeros((64, WIDTH), np.float32)
    inf = good.copy()
    inf[0, 0] = np.inf
    error = _exchange(bob_address, [_hello(config.job), _forward(config.job, 3, inf)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "NaN or infinite" in error.details()

    huge = peer_pb2.PeerMessage(
        forward=peer_pb2.Forward(
            key=_forward(config.job, 3, good).forward.key,
            hidden=tensor_pb2.Tensor(data=b"\0" * (MAX_MESSAGE_BYTES + 1)),
        )
    )
    error = _exchange(bob_address, [_hello(config.job), huge])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Step 1 was trained already: a late tensor for it is refused.
    error = _exchange(bob_address, [_hello(config.job), _forward(config.job, 1, good)])
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "epoch 1 step 1 was already trained" in error.details()
    last = run_window(
        clients, "bob", Window(config.job, 0, 3, 4, 4), lambda _: None, 30.0
    )["bob"]
    assert last.next_step == 7


def test_checkpoint_rpcs_refuse_bad_positions_and_unknown_checkpoints(prepared):
    parties, config, clients = prepared
    bob = clients["bob"]
    reply = bob.save_checkpoint(config.job, 1, 0, 0)
    with pytest.raises(PeerError, match="FAILED_PRECONDITION: .*position epoch 1 step"):
        bob.save_checkpoint(config.job, 2, 0, 10_000)
    with pytest.raises(PeerError, match="checkpoint 9 is not at"):
        bob.restore_checkpoint(config.job, 9, 0, 0, "")
    with pytest.raises(PeerError, match="the file changed since it was saved"):
        bob.restore_checkpoint(config.job, 1, 0, 0, "0" * 64)
    with pytest.raises(PeerError, match="holds no job 'nope'"):
        bob.save_checkpoint("nope", 1, 0, 0)
    bob.restore_checkpoint(config.job, 1, 0, 0, reply.digest)
    last = run_window(
        clients, "bob", Window(config.job, 0, 0, 2, 2), lambda _: None, 30.0
    )["bob"]
    assert last.next_step == 2


# --- a valid peer identity: alice's own certificate -------------------------------


@pytest.fixture
def tls_prepared(tls_party_files, certs):
    """Both parties up over mutual TLS, the job prepared; yields (parties, job
    config, clients, a channel to bob with alice's certificate)."""
    tls_party_files.edit("job", batch_size=64)
    with prepared_federation(tls_party_files, peer_timeout=5.0) as federation:
        parties, config, clients = federation
        channel = _channel_as(certs, "alice", parties["bob"].port, "bob")
        try:
            yield parties, config, clients, channel
        finally:
            channel.close()


def _channel_as(certs, identity: str, port: int, server: str) -> grpc.Channel:
    tls = TlsConfig(
        ca=certs / "ca.pem",
        cert=certs / f"{identity}.pem",
        key=certs / f"{identity}.key",
    )
    return create_channel(f"127.0.0.1:{port}", load_credentials(tls), server)


def _refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _stream_cases(job: str) -> list[tuple[str, list, grpc.StatusCode, str]]:
    good = np.zeros((64, WIDTH), np.float32)
    return [
        (
            "a future step, then the stream ends",
            [_hello(job), _forward(job, 7, good)],
            grpc.StatusCode.FAILED_PRECONDITION,
            "ended before epoch 0 step 7 was trained; its 1 hidden tensor(s)",
        ),
        (
            "another epoch",
            [_hello(job), _forward(job, 0, good, epoch=1)],
            grpc.StatusCode.FAILED_PRECONDITION,
            "ended before epoch 1 step 0 was trained",
        ),
        (
            "a step twice",
            [_hello(job), _forward(job, 2, good), _forward(job, 2, good)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "sent epoch 1 step 2 after epoch 1 step 2; a stream sends a pass's "
            "steps in order, each once",
        ),
        (
            "steps out of order",
            [_hello(job), _forward(job, 4, good), _forward(job, 3, good)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "sent epoch 1 step 3 after epoch 1 step 4",
        ),
        (
            "no phase",
            [_hello(job, phase=common_pb2.PHASE_UNSPECIFIED)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Hello from alice names phase 0; a peer stream is for TRAIN",
        ),
        (
            "an evaluation with no split",
            [_hello(job, phase=common_pb2.PHASE_EVALUATE)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown split 0",
        ),
        (
            "a forward of another phase",
            [_hello(job), _forward(job, 0, good, phase=common_pb2.PHASE_PREDICT)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "on a stream opened for job",
        ),
        (
            "a huge shape",
            [
                _hello(job),
                peer_pb2.PeerMessage(
                    forward=peer_pb2.Forward(
                        key=_forward(job, 0, good).forward.key,
                        hidden=tensor_pb2.Tensor(
                            dtype=tensor_pb2.DTYPE_FLOAT32, shape=[2**40, WIDTH]
                        ),
                    )
                ),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "expected shape (64, 42), got (1099511627776, 42)",
        ),
        (
            "an empty message",
            [_hello(job), peer_pb2.PeerMessage()],
            grpc.StatusCode.INVALID_ARGUMENT,
            "expected Forward messages after Hello, got None",
        ),
        (
            "a Hello naming bob",
            [_hello(job, party="bob")],
            grpc.StatusCode.PERMISSION_DENIED,
            "'bob' is not a configured peer",
        ),
    ]


def _check_other_roles(certs, parties, alice_to_bob, job: str) -> None:
    """Each party's certificate calling what only the other role answers."""
    embed = peer_pb2.EmbedRequest(job_id=job, version="v1", party="alice", keys=["1"])
    error = _refused(lambda: alice_to_bob.Embed(embed, timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "party bob serves no feature outputs" in error.details()
    with _channel_as(certs, "bob", parties["alice"].port, "alice") as channel:
        bob_to_alice = peer_pb2_grpc.PeerStub(channel)
        psi_hello = peer_pb2.PsiHello(job_id=job, party="bob", count=1)
        streams = [
            (
                bob_to_alice.Exchange,
                _hello(job, party="bob"),
                "party 'alice' is not the label party of 'deepfm-ml1m'",
            ),
            (
                bob_to_alice.Intersect,
                peer_pb2.PsiMessage(hello=psi_hello),
                "party alice is a feature party; a PSI stream goes to the job's "
                "label party",
            ),
        ]
        for method, hello, text in streams:
            error = _refused(lambda m=method, h=hello: list(m(iter([h]), timeout=10)))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, text
            assert text in error.details(), error.details()


def _outcome(call) -> grpc.RpcError | None:
    """How a call ended: its error, or None when it ended well."""
    try:
        call()
    except grpc.RpcError as error:
        return error
    return None


def _probe_during_training(channel: grpc.Channel, job: str) -> list:
    """Malformed streams sent while alice's own stream trains: a Hello alone,
    a NaN tensor for a later step, a stream cancelled before its first tensor."""
    nan = np.full((64, WIDTH), np.nan, np.float32)
    stub = peer_pb2_grpc.PeerStub(channel)
    outcomes = [
        _outcome(lambda: list(stub.Exchange(iter([_hello(job)]), timeout=20))),
        _outcome(
            lambda: list(
                stub.Exchange(iter([_hello(job), _forward(job, 99, nan)]), timeout=20)
            )
        ),
    ]
    call, release = _cancelled_stream(stub, [_hello(job)])
    outcomes.append(_outcome(lambda: list(call)))
    release.set()
    return outcomes


def _cancelled_stream(stub, messages: list) -> tuple[grpc.Call, threading.Event]:
    """A stream that sends ``messages``, waits, and is cancelled; set the event
    to let its sending thread go."""
    release = threading.Event()

    def sending():
        yield from messages
        release.wait(20)

    call = stub.Exchange(sending(), timeout=20)
    time.sleep(0.5)
    call.cancel()
    return call, release


def test_malformed_peer_and_psi_streams_from_alices_certificate_change_nothing(
    tls_prepared, certs
):
    parties, config, clients, channel = tls_prepared
    job = config.job
    stub = peer_pb2_grpc.PeerStub(channel)
    _check_other_roles(certs, parties, stub, job)
    for name, messages, code, text in _stream_cases(job):
        error = _refused(lambda m=messages: list(stub.Exchange(iter(m), timeout=20)))
        assert error.code() == code, (name, error.code(), error.details())
        assert text in error.details(), (name, error.details())
    # A stream cancelled after it stored a tensor leaves nothing behind either.
    good = np.zeros((64, WIDTH), np.float32)
    _, release = _cancelled_stream(stub, [_hello(job), _forward(job, 0, good)])
    release.set()

    # While alice's own stream trains, more probes must not disturb it.
    progress = []
    window = threading.Thread(
        target=lambda: progress.append(
            run_window(clients, "bob", Window(job, 0, 0, 100, 1), lambda _: None, 60.0)
        ),
    )
    window.start()
    _wait_for(lambda: clients["bob"].status().step >= 2)
    during = _probe_during_training(channel, job)
    window.join(120)

    assert during[0] is None
    assert during[1].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "NaN or infinite" in during[1].details()
    assert during[2].code() == grpc.StatusCode.CANCELLED
    last = progress[0]["bob"]
    assert last.next_step == 100 and np.isfinite(last.metrics.loss)
    assert clients["alice"].status().step == 100

    _check_psi_probes(config, clients, stub)
    after = run_window(clients, "bob", Window(job, 0, 100, 5, 5), lambda _: None, 30)
    assert after["bob"].next_step == after["alice"].next_step == 105


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class _Conversation:
    """A bidirectional stream driven step by step: ``send`` a message, read
    the replies from ``replies``."""

    def __init__(self) -> None:
        self._outgoing: queue.Queue = queue.Queue()

    def send(self, message) -> None:
        self._outgoing.put(message)

    def end(self) -> None:
        self._outgoing.put(None)

    def messages(self):
        while (message := self._outgoing.get(timeout=60)) is not None:
            yield message


def _psi_probe(stub, job: str, attempt: str, blinded: list) -> grpc.RpcError | None:
    """Acts as alice in bob's PSI round ``attempt`` up to the moment alice sends
    her blinded IDs, then sends ``blinded`` (messages, or nothing) and ends."""
    talk = _Conversation()
    hello = peer_pb2.PsiHello(job_id=job, party="alice", count=4, attempt=attempt)
    talk.send(peer_pb2.PsiMessage(hello=hello))
    replies = stub.Intersect(talk.messages(), timeout=60)
    try:
        next(replies)  # bob's hello with the cache key
        talk.send(peer_pb2.PsiMessage(cache=peer_pb2.PsiCache(has_cache=False)))
        assert not next(replies).cache.use_cache
        while not next(replies).values.last:  # bob's own blinded IDs
            pass
        for message in blinded:
            talk.send(message)
        talk.end()
        list(replies)
    except grpc.RpcError as error:
        return error
    finally:
        talk.end()
    return None


def _values(stage: int, width: int, values: bytes) -> peer_pb2.PsiMessage:
    chunk = peer_pb2.PsiValues(stage=stage, width=width, values=values, last=True)
    return peer_pb2.PsiMessage(values=chunk)


def _check_psi_probes(config, clients, stub) -> None:
    """Garbage in PSI streams with alice's certificate: each probe is alice in
    a PSI round of a job of its own at bob only, whose PrepareJob then fails."""
    spec = dataclasses.replace(
        job_spec(config, describe_all(config, clients, 10.0)), job_id="psi-probe"
    )
    blinded = peer_pb2.PSI_STAGE_BLINDED
    cases = [
        (
            "points of low order",
            [_values(blinded, 32, bytes(4 * 32))],
            "unusable blinded values",
        ),
        (
            "another stage",
            [_values(peer_pb2.PSI_STAGE_ALIGNED, 16, bytes(4 * 16))],
            "expected blinded values 32 bytes wide, got stage PSI_STAGE_ALIGNED",
        ),
        (
            "fewer values than announced",
            [_values(blinded, 32, bytes(2 * 32))],
            "expected 4 blinded values, got 2",
        ),
        (
            "no values at all",
            [],
            "the PSI stream ended before the blinded values",
        ),
    ]
    for i, (name, messages, text) in enumerate(cases):
        prepare = clients["bob"].prepare(spec, 60.0, attempt=f"probe-{i}")
        error = _psi_probe(stub, spec.job_id, f"probe-{i}", messages)
        assert error is not None, name
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, error)
        assert text in error.details(), (name, error.details())
        with pytest.raises(PeerError, match="PSI with party alice failed"):
            clients["bob"].prepared(prepare)
