"""Property-based fuzzing of every RPC of a running party server.

Random bytes, mutated valid messages and valid messages whose job, party and
checkpoint names are path-like (``../x``, absolute paths, huge ids) go to each
control and peer method of bob (the label party, which serves both). Whatever
arrives, the server answers with a status (never an unhandled exception), keeps
serving, leaves the job's model and checkpoints untouched, writes no file
anywhere, and trains normally afterwards.

The export and serving RPCs (``Scoring``, ``Embed``, ``SwitchServing``,
``ExportModel``) get the same treatment at parties that serve an exported
version, after a switch to a version with tampered files was refused: the
served version keeps serving and scores as before.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitrec.common.errors import PeerError
from splitrec.coordinator.windows import Window, run_window
from splitrec.datasets.movielens.tables import (
    MOVIES_CSV,
    USERS_CSV,
    write_entity_tables,
)
from splitrec.v1 import (
    common_pb2,
    control_pb2,
    peer_pb2,
    scoring_pb2,
    scoring_pb2_grpc,
)
from tests.support import prepared_federation

pytestmark = pytest.mark.slow

FUZZ_JOB = "fuzz-job"
_KEY = common_pb2.StepKey(job_id=FUZZ_JOB, phase=common_pb2.PHASE_TRAIN, step=3)

UNARY = {
    "/splitrec.v1.Control/Describe": control_pb2.DescribeRequest(),
    "/splitrec.v1.Control/PrepareJob": control_pb2.PrepareJobRequest(
        job=control_pb2.JobSpec(job_id=FUZZ_JOB, batch_size=8, epochs=1)
    ),
    "/splitrec.v1.Control/Evaluate": control_pb2.EvaluateRequest(job_id=FUZZ_JOB),
    "/splitrec.v1.Control/Predict": control_pb2.PredictRequest(job_id=FUZZ_JOB),
    "/splitrec.v1.Control/GetStatus": control_pb2.StatusRequest(),
    "/splitrec.v1.Control/EndJob": control_pb2.EndJobRequest(job_id=FUZZ_JOB),
    "/splitrec.v1.Control/SaveCheckpoint": control_pb2.SaveCheckpointRequest(
        job_id=FUZZ_JOB, checkpoint_id=7, step=2
    ),
    "/splitrec.v1.Control/RestoreCheckpoint": control_pb2.RestoreCheckpointRequest(
        job_id=FUZZ_JOB, checkpoint_id=0, digest="00"
    ),
    "/splitrec.v1.Control/CommitCheckpoints": control_pb2.CommitCheckpointsRequest(
        job_id=FUZZ_JOB, keep=[1, 2]
    ),
    "/splitrec.v1.Control/ExportModel": control_pb2.ExportModelRequest(
        job_id=FUZZ_JOB, version="v1", epoch=1
    ),
    "/splitrec.v1.Control/SwitchServing": control_pb2.SwitchServingRequest(
        version="v1"
    ),
    "/splitrec.v1.Peer/Embed": peer_pb2.EmbedRequest(
        job_id=FUZZ_JOB, version="v1", party="alice", keys=["1", "2"]
    ),
    "/splitrec.v1.Peer/PrepareServing": peer_pb2.PrepareServingRequest(
        job_id=FUZZ_JOB, version="v1", party="alice"
    ),
}
SERVER_STREAM = {
    "/splitrec.v1.Control/RunSteps": control_pb2.RunStepsRequest(
        job_id=FUZZ_JOB, num_steps=2, report_every=1
    ),
    "/splitrec.v1.Control/HoldJob": control_pb2.HoldJobRequest(
        job_id=FUZZ_JOB, owner=control_pb2.Owner(token="fuzz")
    ),
    "/splitrec.v1.Peer/PushOutputs": peer_pb2.PushRequest(
        job_id=FUZZ_JOB, version="v1", party="alice"
    ),
}
# Names a careless or hostile caller might send where a job, party or file name
# goes; none may lead a write outside the party's folder.
PATH_LIKE = [
    "..",
    ".",
    "",
    "../escape",
    "../../../../tmp/splitrec-fuzz-escape",
    "/tmp/splitrec-fuzz-escape",
    "a/b",
    "deepfm-ml1m/../../x",
    "x" * 300,
    "nul\x00byte",
    "C:\\Windows",
    ".hidden",
    "-rf",
    "名前",
]
CHECKPOINT_IDS = [-1, 100_000_000, 2**62, -(2**62)]
BIDI = {
    "/splitrec.v1.Peer/Exchange": [
        peer_pb2.PeerMessage(hello=peer_pb2.Hello(job_id=FUZZ_JOB, party="alice")),
        peer_pb2.PeerMessage(forward=peer_pb2.Forward(key=_KEY)),
    ],
    "/splitrec.v1.Peer/Intersect": [
        peer_pb2.PsiMessage(hello=peer_pb2.PsiHello(job_id=FUZZ_JOB, party="alice")),
        peer_pb2.PsiMessage(values=peer_pb2.PsiValues(width=32, values=b"\x01" * 64)),
    ],
}


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Byte flips, insertions and cuts at positions taken modulo the length."""
    out = bytearray(data)
    for kind, position, value in edits:
        at = position % (len(out) + 1)
        if kind == 0 and out:
            out[at % len(out)] ^= value or 1
        elif kind == 1:
            out.insert(at, value)
        else:
            del out[at:]
    return bytes(out)


def _payload(valid: bytes) -> st.SearchStrategy[bytes]:
    edits = st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 512), st.integers(0, 255)),
        max_size=6,
    )
    return st.one_of(st.binary(max_size=256), edits.map(lambda e: _mutate(valid, e)))


def _renamed(message, name: str, checkpoint_id: int):
    """A copy of ``message`` with every job, party and checkpoint name replaced."""
    copy = type(message)()
    copy.CopyFrom(message)
    _rename(copy, name, checkpoint_id)
    return copy.SerializeToString()


def _rename(message, name: str, checkpoint_id: int) -> None:
    for field, value in message.ListFields():
        if field.name in ("job_id", "party", "label_party", "version"):
            setattr(message, field.name, name)
        elif field.name == "checkpoint_id":
            message.checkpoint_id = checkpoint_id
        elif field.name == "keep":
            message.keep[:] = [checkpoint_id]
        elif hasattr(value, "ListFields"):  # a message field, not a repeated one
            _rename(value, name, checkpoint_id)
    if hasattr(message, "job_id") and not message.job_id:
        message.job_id = name


def _path_like(valid) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(PATH_LIKE), st.sampled_from(CHECKPOINT_IDS)).map(
        lambda pair: _renamed(valid, *pair)
    )


def _payloads(method: str) -> st.SearchStrategy[list[bytes]]:
    """One request for unary and server-streaming methods, up to three messages
    for the bidirectional ones."""
    if method in BIDI:
        one = st.sampled_from(BIDI[method]).flatmap(
            lambda v: st.one_of(_payload(v.SerializeToString()), _path_like(v))
        )
        return st.lists(one, min_size=1, max_size=3)
    valid = {**UNARY, **SERVER_STREAM}[method]
    return st.one_of(_payload(valid.SerializeToString()), _path_like(valid)).map(
        lambda p: [p]
    )


def _case() -> st.SearchStrategy:
    """A method drawn evenly from all of them, and what to send it."""
    methods = sorted({*UNARY, *SERVER_STREAM, *BIDI})
    return st.sampled_from(methods).flatmap(
        lambda m: st.tuples(st.just(m), _payloads(m))
    )


def _call(channel: grpc.Channel, method: str, payloads: list[bytes]) -> None:
    try:
        if method in UNARY:
            channel.unary_unary(method)(payloads[0], timeout=3)
        elif method in SERVER_STREAM:
            # A hold lasts until its caller lets go: half a second is enough.
            timeout = 0.5 if method.endswith("/HoldJob") else 3
            list(channel.unary_stream(method)(payloads[0], timeout=timeout))
        else:
            list(channel.stream_stream(method)(iter(payloads), timeout=3))
    except grpc.RpcError as error:
        assert error.code() != grpc.StatusCode.UNKNOWN, (method, error.details())
        assert ": internal error:" not in (error.details() or ""), (
            method,
            error.details(),
        )


def _weights(parties) -> list[np.ndarray]:
    job = parties["bob"].party.job("deepfm-ml1m")
    return [v.numpy().copy() for v in job.step.variables]


def _checkpoint_files(files) -> dict[str, int]:
    folder = files.folder / "runs" / "bob" / "deepfm-ml1m" / "checkpoints"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*")}


def _all_files(files) -> list[str]:
    """Every path under the test's folder, and the escape target's existence."""
    paths = sorted(str(p.relative_to(files.folder)) for p in files.folder.rglob("*"))
    return [*paths, f"escape: {Path('/tmp/splitrec-fuzz-escape').exists()}"]


def test_random_and_mutated_messages_never_break_the_server(party_files):
    party_files.edit("job", batch_size=64)
    with prepared_federation(party_files, peer_timeout=3.0) as federation:
        parties, config, clients = federation
        clients["bob"].save_checkpoint(config.job, 0, 0, 0)
        before, files_before = _weights(parties), _checkpoint_files(party_files)
        tree_before = _all_files(party_files)
        address = f"127.0.0.1:{parties['bob'].port}"
        cases = []

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
            derandomize=True,  # the same cases every run: a failure reproduces
        )
        @given(case=_case())
        def fuzz(case: tuple[str, list[bytes]]) -> None:
            method, payloads = case
            cases.append(method)
            with grpc.insecure_channel(address) as channel:
                _call(channel, method, payloads)

        fuzz()
        after, files_after = _weights(parties), _checkpoint_files(party_files)
        tree_after = _all_files(party_files)
        # Still serving, and a normal window trains afterwards.
        assert clients["bob"].describe(5.0).party == "bob"
        last = run_window(
            clients, "bob", Window(config.job, 0, 0, 5, 5), lambda _: None, 30.0
        )["bob"]

    assert len(cases) == 150 and set(cases) == {*UNARY, *SERVER_STREAM, *BIDI}
    for got, want in zip(after, before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert files_after == files_before
    assert tree_after == tree_before
    assert last.next_step == 5


# --- export and serving -------------------------------------------------------

SERVED = "v1"
# Each method of the serving path, the party that answers it and a valid request.
SERVING_CALLS = {
    "/splitrec.v1.Scoring/Score": (
        "bob",
        scoring_pb2.ScoreRequest(
            entities=[
                scoring_pb2.EntityKeys(party="alice", keys=["1"]),
                scoring_pb2.EntityKeys(party="bob", keys=["1", "2", "3"]),
            ]
        ),
    ),
    "/splitrec.v1.Scoring/GetServingStatus": (
        "bob",
        scoring_pb2.ServingStatusRequest(),
    ),
    "/splitrec.v1.Control/SwitchServing": (
        "bob",
        control_pb2.SwitchServingRequest(version=SERVED),
    ),
    "/splitrec.v1.Control/ExportModel": (
        "bob",
        control_pb2.ExportModelRequest(job_id="deepfm-ml1m", version="v9", epoch=0),
    ),
    "/splitrec.v1.Peer/Embed": (
        "alice",
        peer_pb2.EmbedRequest(
            job_id="deepfm-ml1m", version=SERVED, party="bob", keys=["1", "2"]
        ),
    ),
    "/splitrec.v1.Peer/PrepareServing": (
        "alice",
        peer_pb2.PrepareServingRequest(
            job_id="deepfm-ml1m", version=SERVED, party="bob"
        ),
    ),
}


def _serving_case() -> st.SearchStrategy:
    def payloads(method: str) -> st.SearchStrategy[bytes]:
        valid = SERVING_CALLS[method][1]
        return st.one_of(_payload(valid.SerializeToString()), _path_like(valid))

    return st.sampled_from(sorted(SERVING_CALLS)).flatmap(
        lambda m: st.tuples(st.just(m), payloads(m))
    )


def _with_serving(files, data: Path) -> None:
    """Serving sections for both parties: version ``SERVED`` of the job (not
    exported yet) over the entity tables of ``data``."""
    write_entity_tables(data, files.folder)
    for name, table, key in (
        ("alice", USERS_CSV, "UserID"),
        ("bob", MOVIES_CSV, "MovieID"),
    ):
        files.edit(
            name,
            serving={
                "model": {"job": "deepfm-ml1m", "version": SERVED},
                "table": {"path": str(files.folder / table), "key": key},
                "reload_seconds": 0.2,
                **({"clients": ["scorer"]} if name == "bob" else {}),
            },
        )


def _tamper(files) -> None:
    """Version ``v2``: a copy of ``SERVED`` at each party, with one byte of
    each of alice's files flipped."""
    runs = files.folder / "runs"
    for name in ("alice", "bob"):
        model = runs / name / "deepfm-ml1m" / "model"
        shutil.copytree(model / SERVED, model / "v2")
    for path in (runs / "alice" / "deepfm-ml1m" / "model" / "v2").rglob("*"):
        if path.is_file() and path.stat().st_size:
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))


def _served(channel: grpc.Channel) -> scoring_pb2.ServingStatus:
    stub = scoring_pb2_grpc.ScoringStub(channel)
    return stub.GetServingStatus(scoring_pb2.ServingStatusRequest(), timeout=10)


def test_hostile_export_and_serving_requests_leave_the_served_version_serving(
    party_files, small_data
):
    party_files.edit("job", batch_size=64)
    _with_serving(party_files, small_data)
    with prepared_federation(party_files, peer_timeout=30.0) as federation:
        parties, config, clients = federation
        run_window(clients, "bob", Window(config.job, 0, 0, 3, 3), lambda _: None, 30)
        for client in clients.values():
            client.export_model(config.job, SERVED, 0, None, "fuzz")
        channels = {
            n: grpc.insecure_channel(f"127.0.0.1:{p.port}") for n, p in parties.items()
        }
        try:
            deadline = time.monotonic() + 60
            while not _served(channels["bob"]).ready:
                assert time.monotonic() < deadline, _served(channels["bob"]).problem
                time.sleep(0.1)
            before = _served(channels["bob"])
            scorer = scoring_pb2_grpc.ScoringStub(channels["bob"])
            request = SERVING_CALLS["/splitrec.v1.Scoring/Score"][1]
            scores = scorer.Score(request, timeout=10)
            _tamper(party_files)
            with pytest.raises(PeerError) as tampered:
                clients["bob"].switch_serving("v2", 30.0)
            cases = []

            @settings(
                max_examples=80,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                database=None,
                derandomize=True,
            )
            @given(case=_serving_case())
            def fuzz(case: tuple[str, bytes]) -> None:
                method, payload = case
                cases.append(method)
                _call(channels[SERVING_CALLS[method][0]], method, [payload])

            fuzz()
            after = _served(channels["bob"])
            again = scorer.Score(request, timeout=10)
        finally:
            for channel in channels.values():
                channel.close()

    assert set(cases) == set(SERVING_CALLS)
    assert tampered.value.code not in ("UNKNOWN", "INTERNAL"), tampered.value
    assert ": internal error:" not in str(tampered.value)
    assert after.ready and after.version == before.version == SERVED
    assert [list(r.scores) for r in again.rows] == [list(r.scores) for r in scores.rows]
