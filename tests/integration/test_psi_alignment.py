"""Private ID alignment between party servers: results, cache, wire, failures."""

from __future__ import annotations

import hashlib
import shutil
from concurrent import futures

import grpc
import pytest

from splitrec.common.errors import HandshakeError, PeerError, SplitRecError
from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.handshake import handshake
from splitrec.party_server import party as party_module
from splitrec.party_server.data_slice import load_data_slice
from splitrec.party_server.psi_feature import align_with_label_party
from splitrec.party_server.status_codes import status_code
from splitrec.privacy import psi
from splitrec.v1 import peer_pb2, peer_pb2_grpc
from splitrec.wire.rpc import PERMANENT_KEY
from tests.outputs import job_spec
from tests.support import misaligned_copy, running_parties, write_configs


def _handshake(files):
    config = load_job_config(files.job)
    clients = {p.name: PartyClient(p.name, p.address, 60.0) for p in config.parties}
    try:
        return handshake(config, clients)
    finally:
        for client in clients.values():
            client.close()


def _end(parties, job_id: str) -> None:
    for running in parties.values():
        running.party.end_job(job_id)


def test_aligned_rows_are_the_common_ids_in_id_order(misaligned_files, misaligned_data):
    with running_parties(misaligned_files) as parties:
        prepared = _handshake(misaligned_files)
        alice = parties["alice"].party.job("deepfm-ml1m").data
        bob = parties["bob"].party.job("deepfm-ml1m").data
    assert prepared.train_rows + prepared.validation_rows == misaligned_data[1]
    assert not prepared.alignment_cached
    assert alice.ids.tolist() == bob.ids.tolist()
    assert alice.ids.tolist() == sorted(alice.ids.tolist())
    # bob's labels and alice's features travelled with their rows.
    source = load_data_slice(load_party_config(misaligned_files.bob))
    position = {key: i for i, key in enumerate(source.ids.tolist())}
    rows = [position[key] for key in bob.ids.tolist()]
    assert (bob.labels == source.labels[rows]).all()


def test_second_run_reuses_the_alignment_until_a_file_changes(
    misaligned_data, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(misaligned_data[0], data)
    files = write_configs(tmp_path / "cfg", data)
    with running_parties(files) as parties:
        first = _handshake(files)
        sent_first = parties["alice"].party.traffic.snapshot().bytes_sent
        _end(parties, "deepfm-ml1m")
        second = _handshake(files)
        sent_second = parties["alice"].party.traffic.snapshot().bytes_sent - sent_first
        _end(parties, "deepfm-ml1m")
    assert not first.alignment_cached and second.alignment_cached
    assert first.train_rows == second.train_rows
    assert sent_first > 32 * 10_000 and sent_second < 1_000

    # bob's file loses one common row: the cache no longer fits.
    lines = (data / "bob_ml1m.csv").read_text().splitlines()
    alice_ids = {
        line.split(",", 1)[0]
        for line in (data / "alice_ml1m.csv").read_text().splitlines()[1:]
    }
    dropped = next(
        i for i, line in enumerate(lines[1:], 1) if line.split(",")[0] in alice_ids
    )
    del lines[dropped]
    (data / "bob_ml1m.csv").write_text("\n".join(lines) + "\n")
    with running_parties(files):
        third = _handshake(files)
    assert not third.alignment_cached
    total = third.train_rows + third.validation_rows
    assert total == first.train_rows + first.validation_rows - 1


def test_only_blinded_values_leave_the_feature_party(small_data, tmp_path, monkeypatch):
    data, _ = misaligned_copy(
        small_data, tmp_path / "data", id_format="user-{:09d}-row"
    )
    files = write_configs(tmp_path / "cfg", data)
    sent: list[bytes] = []

    class Recorder(grpc.StreamStreamClientInterceptor):
        def intercept_stream_stream(self, continuation, details, requests):
            def recorded():
                for message in requests:
                    sent.append(message.SerializeToString())
                    yield message

            return continuation(details, recorded())

    create = party_module.create_channel
    monkeypatch.setattr(
        party_module,
        "create_channel",
        lambda *a, **k: grpc.intercept_channel(create(*a, **k), Recorder()),
    )
    with running_parties(files):
        _handshake(files)
    wire = b"".join(sent)
    ids = load_data_slice(load_party_config(files.alice)).ids.tolist()
    assert len(wire) > 32 * len(ids)  # the blinded values were recorded
    for key in ids:
        raw = key.encode()
        assert raw not in wire
        assert hashlib.sha256(raw).digest()[:12] not in wire
        assert psi.hash_to_points([key])[:12] not in wire


def test_disjoint_files_are_refused_clearly(small_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    lines = (data / "bob_ml1m.csv").read_text().splitlines()
    moved = [f"x{line}" if i else line for i, line in enumerate(lines)]
    (data / "bob_ml1m.csv").write_text("\n".join(moved) + "\n")
    files = write_configs(tmp_path / "cfg", data)
    with running_parties(files) as parties:
        with pytest.raises(SplitRecError) as error:
            _handshake(files)
        assert "no row ID is held by every party" in str(error.value)
        # The parties serve on and hold no half-prepared job.
        assert parties["bob"].party.status().state == "idle"


class AbortingLabelParty(peer_pb2_grpc.PeerServicer):
    """Answers the hello and the cache check, then drops the stream (with
    ``error``: refuses it as a party does)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def Intersect(self, request_iterator, context):  # noqa: N802
        next(request_iterator)
        yield peer_pb2.PsiMessage(
            hello=peer_pb2.PsiHello(party="bob", count=5, cache_key="k")
        )
        next(request_iterator)
        yield peer_pb2.PsiMessage(cache=peer_pb2.PsiCache(use_cache=False))
        next(request_iterator)
        if self.error is not None:  # as a party's servicer refuses it
            context.set_trailing_metadata(((PERMANENT_KEY, "1"),))
            context.abort(status_code(self.error), f"Intersect: {self.error}")
        context.abort(grpc.StatusCode.UNAVAILABLE, "bob is going away")


def _align_with(party_files, label_party: AbortingLabelParty) -> PeerError:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    peer_pb2_grpc.add_PeerServicer_to_server(label_party, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = load_party_config(party_files.alice)
    spec = job_spec(job_id="j", batch_size=8, epochs=1, parties=())
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
            pytest.raises(PeerError) as error,
        ):
            align_with_label_party(channel, spec, config, load_data_slice(config))
    finally:
        server.stop(0)
    return error.value


def test_a_label_party_s_refusal_keeps_its_code_and_permanence(party_files):
    refused = _align_with(
        party_files, AbortingLabelParty(HandshakeError("bob's IDs are not keys"))
    )

    assert str(refused) == (
        "party bob ended the PSI stream: FAILED_PRECONDITION: Intersect: bob's "
        "IDs are not keys"
    )
    assert (refused.code, refused.permanent) == ("FAILED_PRECONDITION", True)
    # alice's PrepareJob answers the coordinator with the same refusal.
    assert status_code(refused) == grpc.StatusCode.FAILED_PRECONDITION


def test_peer_that_aborts_mid_protocol_is_named(party_files):
    away = _align_with(party_files, AbortingLabelParty())

    assert str(away) == "party bob ended the PSI stream: UNAVAILABLE: bob is going away"
    assert status_code(away) == grpc.StatusCode.UNAVAILABLE
