"""Online split inference: the label party's ``Scoring`` service over mutual
TLS, answered with the feature party's outputs of its entity table.

One job is trained once for the module (two epochs, exported as ``epoch-1``
and ``epoch-2``); each test starts the parties again with a ``serving``
section."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from splitrec.common.errors import DataError, NotAllowedError
from splitrec.common.names import scoring_run_name
from splitrec.config.party import load_party_config
from splitrec.coordinator import local
from splitrec.coordinator.local import start_federation
from splitrec.datasets.movielens.tables import (
    MOVIES_CSV,
    USERS_CSV,
    write_entity_tables,
)
from splitrec.party_server import server as in_process
from splitrec.party_server.export_files import write_file_list
from splitrec.security.certs import write_bundle
from splitrec.security.tls import TlsConfig, load_credentials
from splitrec.v1 import (
    control_pb2,
    control_pb2_grpc,
    peer_pb2_grpc,
    scoring_pb2,
    scoring_pb2_grpc,
)
from splitrec.wire import serde
from splitrec.wire.rpc import create_channel
from tests.support import (
    run_module,
    running_parties,
    write_configs,
)

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"


class Trained:
    def __init__(self, folder: Path, data: Path) -> None:
        self.folder = folder
        self.certs = folder / "certs"
        write_bundle(self.certs, ["alice", "bob", "coordinator", "scorer"])
        self.files = write_configs(folder, data, self.certs)
        self.files.edit("job", epochs=2, export="auto")
        self.scores = folder / "runs" / "bob" / JOB / "predictions-validation.csv"
        self.data = data
        self.users = folder / USERS_CSV
        self.movies = folder / MOVIES_CSV

    def raw(self, name: str) -> pd.DataFrame:
        config = load_party_config(getattr(self.files, name))
        frame = pd.read_csv(config.data.path, dtype=str, keep_default_na=False)
        return frame.set_index(config.data.id_column)

    def write_tables(self) -> None:
        """Entity tables as ``splitrec data movielens tables`` writes them."""
        write_entity_tables(self.data, self.folder)

    def serve(self, version: str, alice: dict | None = None, **changes: object) -> None:
        """Serving sections for both parties (``changes`` go to bob's, ``alice``
        to alice's)."""
        model = {"job": JOB, "version": version}
        self.files.edit(
            "alice",
            serving={
                "model": model,
                "table": {"path": str(self.users), "key": "UserID"},
                "reload_seconds": 0.2,
                **(alice or {}),
            },
        )
        self.files.edit(
            "bob",
            serving={
                "model": model,
                "table": {"path": str(self.movies), "key": "MovieID"},
                "clients": ["scorer"],
                "reload_seconds": 0.2,
                **changes,
            },
        )

    def client(
        self, address: str, identity: str = "scorer", party: str = "bob"
    ) -> grpc.Channel:
        tls = TlsConfig(
            ca=self.certs / "ca.pem",
            cert=self.certs / f"{identity}.pem",
            key=self.certs / f"{identity}.key",
        )
        return create_channel(address, load_credentials(tls), party)

    def version_folder(self, party: str, version: str) -> Path:
        output = load_party_config(getattr(self.files, party)).output_dir
        return output / JOB / "model" / version


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, small_data: Path) -> Trained:
    model = Trained(tmp_path_factory.mktemp("online"), small_data)
    for name in ("alice", "bob"):
        path = model.files.read(name)["data"]["path"]
        model.files.edit(name, datasets={"again": path})
    job = ("--job", str(model.files.job))
    with running_parties(model.files):
        for command in (
            ("run",),
            ("export", "--epoch", "1"),
            ("predict", "--model", "epoch-2", "--dataset", "again"),
        ):
            result = _coordinator(*command, *job)
            assert result.returncode == 0, result.stderr[-3000:]
    model.write_tables()
    return model


def _coordinator(*args: str) -> subprocess.CompletedProcess:
    return run_module(["splitrec.coordinator", *args])


@contextlib.contextmanager
def serving(
    trained: Trained,
    version: str = "epoch-2",
    alice: dict | None = None,
    **changes: object,
) -> Iterator[tuple[dict, object]]:
    trained.write_tables()
    trained.serve(version, alice, **changes)
    with running_parties(trained.files) as parties:
        channel = trained.client(f"127.0.0.1:{parties['bob'].port}")
        try:
            yield parties, scoring_pb2_grpc.ScoringStub(channel)
        finally:
            channel.close()


def _copy_version(trained: Trained, party: str, source: str, target: str) -> None:
    """A party's part of ``source`` as an export of the same model under
    ``target`` would have written it (the same export id)."""
    folder = trained.version_folder(party, target)
    staging = folder.with_name(f".{target}-copy")
    shutil.copytree(trained.version_folder(party, source), staging)
    described = json.loads((staging / "model.json").read_text())
    described["version"] = target
    (staging / "model.json").write_text(json.dumps(described, indent=2))
    write_file_list(staging)
    staging.rename(folder)


def _score(stub: object, user: str, movies: list[str], **kw: object):
    request = serde.score_request_to_proto({"alice": [user], "bob": movies})
    return stub.Score(request, timeout=10, **kw)


def _expected(trained: Trained) -> pd.DataFrame:
    """The job's validation rows: user, movie, the score the job gave and
    (``batch``) the score batch scoring gave with the exported epoch-2."""
    scores = pd.read_csv(trained.scores, dtype={"ID": str}).set_index("ID")
    bob = load_party_config(trained.files.bob).output_dir
    batch = bob / scoring_run_name(JOB, "epoch-2", "again") / "predictions-all.csv"
    batch_scores = pd.read_csv(batch, dtype={"ID": str}).set_index("ID")["score"]
    scores["batch"] = batch_scores.loc[scores.index]
    scores["UserID"] = trained.raw("alice").loc[scores.index, "UserID"]
    scores["MovieID"] = trained.raw("bob").loc[scores.index, "MovieID"]
    return scores


def _wait(condition: object, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_online_scores_are_the_batch_and_job_scores_and_come_from_the_cache(trained):
    expected = _expected(trained)
    users = expected.groupby("UserID")
    with serving(trained) as (parties, stub):
        channel = trained.client(f"127.0.0.1:{parties['bob'].port}")
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(
            health_pb2.HealthCheckRequest(service="splitrec.v1.Scoring"), timeout=5
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        checked = 0
        for user, rows in sorted(users, key=lambda u: -len(u[1]))[:40]:
            movies = rows["MovieID"].tolist()
            reply = _score(stub, user, movies)
            assert reply.version == "epoch-2"
            assert [r.problem for r in reply.rows] == [""] * len(movies)
            got = np.array([r.scores[0] for r in reply.rows])
            np.testing.assert_allclose(got, rows["score"].to_numpy(), atol=1.5e-6)
            np.testing.assert_allclose(got, rows["batch"].to_numpy(), atol=1.5e-6)
            assert (reply.cached, reply.fetched) == (0, 1)
            again = _score(stub, user, movies)
            assert (again.cached, again.fetched) == (1, 0)
            assert [r.scores[0] for r in again.rows] == list(got.astype(np.float32))
            checked += len(movies)
        assert checked > 100
        status = stub.GetServingStatus(scoring_pb2.ServingStatusRequest(), timeout=5)
        assert status.ready and status.version == "epoch-2"
        assert [p.party for p in status.parts] == ["alice", "bob"]
        assert status.parts[1].key_column == "MovieID" and status.cached_outputs == 40
        channel.close()


def test_requests_are_checked_row_by_row_and_as_a_whole(trained):
    expected = _expected(trained)
    user = expected["UserID"].iloc[0]
    movies = expected["MovieID"].iloc[:3].tolist()
    with serving(trained, max_rows=50) as (parties, stub):
        reply = _score(stub, user, [movies[0], "no-such-movie", movies[1]])
        assert [bool(r.scores) for r in reply.rows] == [True, False, True]
        assert reply.rows[1].problem == "party bob holds no MovieID 'no-such-movie'"
        reply = _score(stub, "99999999", movies)
        assert {r.problem for r in reply.rows} == {
            "party alice holds no entity '99999999'"
        }
        refusals = {
            "RESOURCE_EXHAUSTED": {"alice": [user], "bob": movies * 17},
            "INVALID_ARGUMENT": {"alice": [user], "carol": movies},
        }
        for code, keys in refusals.items():
            with pytest.raises(grpc.RpcError) as caught:
                stub.Score(serde.score_request_to_proto(keys), timeout=10)
            assert caught.value.code().name == code, caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            _score(stub, user, [movies[0], ""])
        assert "bob's key at position 1 is empty" in caught.value.details()
        uneven = {"alice": [user, user], "bob": movies}
        with pytest.raises(grpc.RpcError) as caught:
            stub.Score(serde.score_request_to_proto(uneven), timeout=10)
        assert "alice gives 2 keys" in caught.value.details()
        # Only the listed client identities may call the service.
        other = trained.client(f"127.0.0.1:{parties['bob'].port}", "coordinator")
        with pytest.raises(grpc.RpcError) as caught:
            _score(scoring_pb2_grpc.ScoringStub(other), user, movies)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "scoring clients ['scorer']" in caught.value.details()
        other.close()


def test_a_changed_table_is_served_without_a_restart(trained):
    expected = _expected(trained)
    user, second = expected["UserID"].unique()[:2]
    movies = expected["MovieID"].iloc[:5].tolist()
    with serving(trained) as (parties, stub):
        before = [r.scores[0] for r in _score(stub, user, movies).rows]
        alice = parties["alice"].serving
        old = alice.current().table.digest
        users = pd.read_csv(trained.users, dtype=str, keep_default_na=False)
        broken = pd.concat([users, users.iloc[:1]])
        broken.to_csv(trained.users, index=False)  # a key twice: refused
        time.sleep(1.0)
        assert [r.scores[0] for r in _score(stub, user, movies).rows] == before
        assert alice.current().table.digest == old
        assert "is already on line" in alice.problem
        table = ("table", str(trained.users.resolve()))
        status = _party_status(trained, parties, "alice").serving
        assert status.ready and "is already on line" in _kept_out(status)[table]
        row = users["UserID"] == user
        for column, values in (("Gender", "FM"), ("Occupation", "01")):
            now = users.loc[row, column].item()
            users.loc[row, column] = values[1] if now == values[0] else values[0]
        users.to_csv(trained.users, index=False)
        _wait(lambda: alice.current().table.digest != old)
        assert table not in _kept_out(_party_status(trained, parties, "alice").serving)
        # A new key shows the label party the new table; its cache of alice's
        # outputs is dropped, so the changed user is asked for again.
        _score(stub, second, movies)
        after = [r.scores[0] for r in _score(stub, user, movies).rows]
        assert after != before


def test_sigterm_of_the_feature_party_fails_its_requests_until_it_is_back(trained):
    """alice runs as her own process: after SIGTERM, requests that need her
    outputs fail with a clear UNAVAILABLE while cached rows are still scored;
    started again on her address, she is used again without a restart of bob."""
    expected = _expected(trained)
    user, other = expected["UserID"].unique()[:2]
    movies = expected["MovieID"].iloc[:5].tolist()
    trained.write_tables()
    trained.serve("epoch-2")
    logs = trained.folder / "logs"

    def start(name: str, config: Path):
        if name == "alice":  # at the address in her config
            return local.start_party(config, logs / "alice.log")
        return in_process.start_party(load_party_config(config))

    # alice first: bob asks her for her outputs.
    parties = start_federation(trained.files, start, first="alice")
    alice, bob = parties["alice"], parties["bob"]
    try:
        channel = trained.client(f"127.0.0.1:{bob.port}")
        stub = scoring_pb2_grpc.ScoringStub(channel)
        cached = _score(stub, user, movies)
        assert alice.stop() == 0
        again = _score(stub, user, movies)
        assert again.cached == 1
        assert [r.scores for r in again.rows] == [r.scores for r in cached.rows]
        with pytest.raises(grpc.RpcError) as caught:
            _score(stub, other, movies)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "party alice did not answer Embed" in caught.value.details()
        alice = start("alice", trained.files.alice)
        _wait(lambda: _answers(stub, other, movies), timeout=30)
        assert _score(stub, other, movies).rows[0].scores
        channel.close()
    finally:
        alice.stop()
        bob.stop(grace=1.0)


def _answers(stub: object, user: str, movies: list[str]) -> bool:
    try:
        _score(stub, user, movies)
    except grpc.RpcError:
        return False
    return True


def test_feature_outputs_go_to_the_label_party_only(trained):
    """alice answers Embed to her label party only: another certificate is
    refused before the call, another party's name by her serving."""
    user = _expected(trained)["UserID"].iloc[0]
    with serving(trained) as (parties, stub):
        assert _score(stub, user, ["1"]).version == "epoch-2"
        alice_address = f"127.0.0.1:{parties['alice'].port}"
        certs = trained.certs
        tls = TlsConfig(
            ca=certs / "ca.pem",
            cert=certs / "coordinator.pem",
            key=certs / "coordinator.key",
        )
        channel = create_channel(alice_address, load_credentials(tls), "alice")
        request = serde.embed_request_to_proto(JOB, "epoch-2", "coordinator", [user])
        with pytest.raises(grpc.RpcError) as caught:
            peer_pb2_grpc.PeerStub(channel).Embed(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "accepts /splitrec.v1.Peer/Embed only from its peers" in (
            caught.value.details()
        )
        channel.close()
        alice = parties["alice"].serving
        with pytest.raises(NotAllowedError, match="label party 'bob' only"):
            alice.embed(JOB, "epoch-2", "carol", [user])
        with pytest.raises(DataError, match="'nope' of job .* is not exported here"):
            alice.embed(JOB, "nope", "bob", [user])


def test_a_version_switch_under_load_drops_no_request(trained):
    """Clients score without a pause while the parties switch from epoch-1 to
    epoch-2: every request is answered, by one version each, and once a
    client saw epoch-2 it never sees epoch-1 again. A version one party lacks
    is refused and changes nothing."""
    expected = _expected(trained)
    user = expected["UserID"].value_counts().index[0]
    rows = expected[expected["UserID"] == user]
    movies = rows["MovieID"].tolist()
    _copy_version(trained, "bob", "epoch-2", "only-bob")
    with serving(trained, "epoch-1") as (parties, stub):
        first = _score(stub, user, movies)
        assert first.version == "epoch-1"
        assert not np.allclose([r.scores[0] for r in first.rows], rows["score"])
        refused = _coordinator(
            "serve-switch", "--job", str(trained.files.job), "--version", "only-bob"
        )
        assert refused.returncode == 1
        assert "'epoch-1' stays: alice: FAILED_PRECONDITION" in refused.stderr
        assert _score(stub, user, movies).version == "epoch-1"
        stop = threading.Event()
        seen: list[list[str]] = [[] for _ in range(4)]
        errors: list[str] = []

        def client(index: int) -> None:
            end = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < end:
                try:
                    seen[index].append(_score(stub, user, movies).version)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            switched = _coordinator(
                "serve-switch", "--job", str(trained.files.job), "--version", "epoch-2"
            )
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert switched.returncode == 0, switched.stderr[-3000:]
        assert "every party serves model version epoch-2 now (was epoch-1" in (
            switched.stdout
        )
        assert errors == []
        for versions in seen:
            assert versions[0] == "epoch-1" and versions[-1] == "epoch-2"
            turned = versions.index("epoch-2")
            assert set(versions[turned:]) == {"epoch-2"}
        after = _score(stub, user, movies)
        got = [r.scores[0] for r in after.rows]
        np.testing.assert_allclose(got, rows["score"].to_numpy(), atol=1.5e-6)


def test_a_feature_party_that_pushes_fills_the_cache_ahead_of_requests(trained):
    expected = _expected(trained)
    users = pd.read_csv(trained.users, dtype=str)["UserID"]
    rows = expected[expected["UserID"] == expected["UserID"].iloc[-1]]
    with serving(trained, alice={"push": True}) as (parties, stub):
        bob = parties["bob"].serving
        _wait(lambda: len(bob.cache) == len(users))
        reply = _score(stub, rows["UserID"].iloc[0], rows["MovieID"].tolist())
        assert (reply.cached, reply.fetched) == (1, 0)
        got = [r.scores[0] for r in reply.rows]
        np.testing.assert_allclose(got, rows["score"].to_numpy(), atol=1.5e-6)


_TEXT = st.text(max_size=12) | st.sampled_from(["", "..", "x" * 300, "1", "名前"])


@st.composite
def _score_requests(draw: st.DrawFn) -> bytes:
    """A Score request of random parties and keys, or random bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    parties = draw(st.lists(st.sampled_from(["alice", "bob", "carol", ""]), max_size=3))
    request = scoring_pb2.ScoreRequest()
    for party in parties:
        keys = draw(st.lists(_TEXT, max_size=draw(st.sampled_from([3, 60]))))
        request.entities.add(party=party, keys=keys)
    return request.SerializeToString()


def test_random_score_requests_get_a_status_and_the_service_goes_on(trained):
    expected = _expected(trained)
    user, movie = expected["UserID"].iloc[0], expected["MovieID"].iloc[0]
    with serving(trained, max_rows=50) as (parties, stub):
        channel = trained.client(f"127.0.0.1:{parties['bob'].port}")
        score = channel.unary_unary("/splitrec.v1.Scoring/Score")

        @settings(max_examples=120, deadline=None, derandomize=True)
        @given(_score_requests())
        def fuzz(payload: bytes) -> None:
            try:
                score(payload, timeout=5)
            except grpc.RpcError as error:
                # Bytes that are no ScoreRequest are refused by gRPC itself.
                undecodable = error.details() == "Exception deserializing request!"
                assert undecodable or error.code() in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                ), (error.code(), error.details())

        fuzz()
        reply = _score(stub, user, [movie])
        assert reply.rows[0].scores and not reply.rows[0].problem
        channel.close()


def test_the_readme_grpcurl_commands_for_scoring(trained):
    from tests.integration.test_grpcurl_inspection import GRPCURL

    if GRPCURL is None:
        pytest.skip("grpcurl is installed by `make install`")
    expected = _expected(trained)
    user = expected["UserID"].iloc[0]
    movies = expected["MovieID"].iloc[:2].tolist()
    certs = trained.certs
    scorer = [
        "-cacert", str(certs / "ca.pem"),
        "-cert", str(certs / "scorer.pem"),
        "-key", str(certs / "scorer.key"),
        "-servername", "bob",
    ]  # fmt: skip

    def grpcurl(*args: str) -> str:
        result = subprocess.run(
            [GRPCURL, *scorer, *args], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    with serving(trained) as (parties, stub):
        address = f"127.0.0.1:{parties['bob'].port}"
        described = grpcurl(address, "describe", "splitrec.v1.Scoring")
        assert "rpc Score" in described and "rpc GetServingStatus" in described
        health = '{"service": "splitrec.v1.Scoring"}'
        checked = grpcurl("-d", health, address, "grpc.health.v1.Health/Check")
        assert json.loads(checked) == {"status": "SERVING"}
        status = json.loads(grpcurl(address, "splitrec.v1.Scoring/GetServingStatus"))
        assert status["ready"] is True and status["version"] == "epoch-2"
        request = json.dumps(
            {
                "entities": [
                    {"party": "alice", "keys": [user]},
                    {"party": "bob", "keys": movies},
                ]
            }
        )
        method = "splitrec.v1.Scoring/Score"
        scored = json.loads(grpcurl("-d", request, address, method))
        direct = _score(stub, user, movies)
        np.testing.assert_allclose(
            [r["scores"] for r in scored["rows"]],
            [list(r.scores) for r in direct.rows],
            rtol=1e-6,
        )


def test_a_version_exported_after_start_up_is_served_once_it_appears(trained):
    expected = _expected(trained)
    user, movie = expected["UserID"].iloc[0], expected["MovieID"].iloc[0]
    with serving(trained, "later") as (parties, stub):
        with pytest.raises(grpc.RpcError) as caught:
            _score(stub, user, [movie])
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "party bob is not serving: model version 'later'" in (
            caught.value.details()
        )
        assert "is not exported here" in caught.value.details()
        for name in ("alice", "bob"):
            _copy_version(trained, name, "epoch-2", "later")
        _wait(lambda: parties["bob"].serving.problem == "")
        reply = _score(stub, user, [movie])
        assert reply.version == "later" and reply.rows[0].scores


def _tamper(folder: Path) -> None:
    """One byte more in a file the party does not even serve from."""
    path = folder / "base.weights.h5"
    path.write_bytes(path.read_bytes() + b"\0")


def _other_export(folder: Path) -> None:
    """The part as another export of the same version would have written it:
    whole by its own list, but under another export id."""
    described = json.loads((folder / "model.json").read_text())
    described["export_id"] = "0123456789abcdef"
    (folder / "model.json").write_text(json.dumps(described, indent=2))
    write_file_list(folder)


@contextlib.contextmanager
def _changed(trained: Trained, version: str, changes: dict) -> Iterator[None]:
    """Each party's part of ``version`` changed by ``changes[party]``, and
    put back as exported afterwards."""
    kept = {}
    for party, change in changes.items():
        folder = trained.version_folder(party, version)
        kept[folder] = trained.folder / f"kept-{party}-{version}"
        shutil.copytree(folder, kept[folder])
        change(folder)
    try:
        yield
    finally:
        for folder, copy in kept.items():
            shutil.rmtree(folder)
            shutil.move(copy, folder)


def _refusal(result: subprocess.CompletedProcess, parties: list[str]) -> str:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    for party in parties:
        assert f"party {party}: model version 'epoch-1' of job '{JOB}'" in (
            result.stderr
        ), result.stderr[-3000:]
    return result.stderr


def test_predict_and_a_warm_start_refuse_a_changed_part_naming_every_party(trained):
    job = ("--job", str(trained.files.job))
    predict = ("predict", "--model", "epoch-1", "--dataset", "again", *job)
    warm = trained.folder / "warm.yaml"
    changed = {"alice": _tamper, "bob": _tamper}
    with running_parties(trained.files), _changed(trained, "epoch-1", changed):
        config = {
            **trained.files.read("job"),  # the parties' addresses now
            "job": "deepfm-warm",
            "epochs": 3,
            "init_from": {"job": JOB, "version": "epoch-1"},
        }
        warm.write_text(yaml.safe_dump(config, sort_keys=False))
        for command in (predict, ("run", "--job", str(warm))):
            text = _refusal(_coordinator(*command), ["alice", "bob"])
            assert text.count("file base.weights.h5 differs from its export") == 2
            assert "FAILED_PRECONDITION" in text
    with (
        running_parties(trained.files),
        _changed(trained, "epoch-1", {"alice": _other_export}),
    ):
        text = _refusal(_coordinator(*predict), ["alice"])
        assert "names export_id '0123456789abcdef' (expected '" in text
        assert "party bob: model version" not in text


def _party_status(trained: Trained, parties: dict, name: str):
    address = f"127.0.0.1:{parties[name].port}"
    channel = trained.client(address, "coordinator", name)
    try:
        stub = control_pb2_grpc.ControlStub(channel)
        return stub.GetStatus(control_pb2.StatusRequest(), timeout=10)
    finally:
        channel.close()


def _kept_out(status: object) -> dict:
    return {(k.kind, k.name): k.reason for k in status.kept_out}


def test_a_changed_part_is_not_served_and_the_status_says_why(trained):
    """At start-up alice refuses her changed part of the served version, so
    bob's requests fail naming her file; both statuses show the refusal. A
    part of another export is refused by bob. A switch to a changed version
    is refused and every party keeps serving the version it had."""
    expected = _expected(trained)
    user, movies = expected["UserID"].iloc[0], expected["MovieID"].iloc[:3].tolist()
    request = scoring_pb2.ServingStatusRequest()
    with (
        _changed(trained, "epoch-2", {"alice": _tamper}),
        serving(trained) as (parties, stub),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            _score(stub, user, movies)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = caught.value.details()
        assert "party alice: model version 'epoch-2'" in details
        assert "file base.weights.h5 differs from its export" in details
        status = stub.GetServingStatus(request, timeout=5)
        assert status.ready and status.version == "epoch-2"
        assert "base.weights.h5" in _kept_out(status)[("part", "alice")]
        alice = _party_status(trained, parties, "alice").serving
        assert not alice.ready
        assert "base.weights.h5 differs" in _kept_out(alice)[("version", "epoch-2")]
        # Alice's part whole again, but from another export: bob refuses it.
        folder = trained.version_folder("alice", "epoch-2")
        shutil.rmtree(folder)
        shutil.copytree(trained.folder / "kept-alice-epoch-2", folder)
        _other_export(folder)
        _wait(lambda: parties["alice"].serving.problem == "")
        with pytest.raises(grpc.RpcError) as caught:
            _score(stub, user, movies)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "party alice's part of model version 'epoch-2'" in (
            caught.value.details()
        )
        assert "export id '0123456789abcdef'" in caught.value.details()
        status = stub.GetServingStatus(request, timeout=5)
        assert "(its model.json)" in _kept_out(status)[("part", "alice")]
    switch = ("serve-switch", "--job", str(trained.files.job), "--version", "epoch-1")
    with serving(trained) as (parties, stub):
        assert _score(stub, user, movies).version == "epoch-2"
        for change, needle in (
            (_tamper, "file base.weights.h5 differs from its export"),
            (_other_export, "names export id '0123456789abcdef'"),
        ):
            with _changed(trained, "epoch-1", {"alice": change}):
                refused = _coordinator(*switch)
            assert refused.returncode == 1
            assert "'epoch-2' stays: alice: FAILED_PRECONDITION" in refused.stderr
            assert needle in refused.stderr and "'epoch-1'" in refused.stderr
            assert _score(stub, user, movies).version == "epoch-2"
            status = stub.GetServingStatus(request, timeout=5)
            assert needle in _kept_out(status)[("version", "epoch-1")]
        switched = _coordinator(*switch)
        assert switched.returncode == 0, switched.stderr[-3000:]
        assert _score(stub, user, movies).version == "epoch-1"
        status = stub.GetServingStatus(request, timeout=5)
        assert ("version", "epoch-1") not in _kept_out(status)
