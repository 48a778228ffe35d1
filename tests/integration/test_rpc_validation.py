"""Bad messages get the right gRPC status and a readable message; nothing breaks."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from common.errors import PeerError
from common.rpc import MAX_MESSAGE_BYTES
from common.serde import tensor_to_proto
from coordinator.windows import Window, run_window
from splitrec.v1 import (
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    peer_pb2,
    peer_pb2_grpc,
    tensor_pb2,
)
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


def _forward(job: str, step: int, hidden: np.ndarray) -> peer_pb2.PeerMessage:
    key = common_pb2.StepKey(
        job_id=job, phase=common_pb2.PHASE_TRAIN, epoch=0, step=step
    )
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
