"""Mutual TLS: every wrong caller is refused with a clear status and the server
keeps serving the right ones."""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
import pytest

from splitrec.common.errors import PeerError
from splitrec.coordinator.client import PartyClient
from splitrec.security.certs import (
    cert_pem,
    issue,
    key_pem,
    load_authority,
    write_bundle,
)
from splitrec.v1 import control_pb2, control_pb2_grpc, peer_pb2, peer_pb2_grpc
from tests.support import running_parties


def _pem(folder: Path, identity: str) -> tuple[bytes, bytes]:
    return (folder / f"{identity}.key").read_bytes(), (
        folder / f"{identity}.pem"
    ).read_bytes()


def _describe(
    address: str,
    ca: bytes | None,
    identity_files: tuple[bytes, bytes] | None,
    server_name: str = "bob",
) -> control_pb2.PartyDescription:
    if ca is None:
        channel = grpc.insecure_channel(address)
    else:
        key, cert = identity_files if identity_files else (None, None)
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
        options = [("grpc.ssl_target_name_override", server_name)]
        channel = grpc.secure_channel(address, credentials, options=options)
    with channel:
        stub = control_pb2_grpc.ControlStub(channel)
        return stub.Describe(control_pb2.DescribeRequest(), timeout=10)


@pytest.fixture
def bob(tls_party_files, certs):
    with running_parties(tls_party_files) as parties:
        address = f"127.0.0.1:{parties['bob'].port}"
        yield address
        # Whatever was refused, the coordinator is still served.
        ca = (certs / "ca.pem").read_bytes()
        assert _describe(address, ca, _pem(certs, "coordinator")).party == "bob"


def _refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def test_coordinator_certificate_is_served(bob, certs):
    ca = (certs / "ca.pem").read_bytes()
    description = _describe(bob, ca, _pem(certs, "coordinator"))
    assert description.party == "bob"


def test_certificate_from_an_unknown_ca_is_refused(bob, certs, tmp_path):
    write_bundle(tmp_path, ["coordinator"])
    ca = (certs / "ca.pem").read_bytes()
    error = _refused(lambda: _describe(bob, ca, _pem(tmp_path, "coordinator")))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    # Nor does a client that trusts only the other CA accept bob.
    other_ca = (tmp_path / "ca.pem").read_bytes()
    error = _refused(lambda: _describe(bob, other_ca, _pem(tmp_path, "coordinator")))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "handshake" in error.details().lower() or "ssl" in error.details().lower()


def test_feature_party_certificate_may_not_drive_the_label_party(bob, certs):
    ca = (certs / "ca.pem").read_bytes()
    error = _refused(lambda: _describe(bob, ca, _pem(certs, "alice")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        "party bob accepts /splitrec.v1.Control/Describe only from the coordinator "
        "('coordinator'); the caller's certificate names 'alice'"
    )


def test_coordinator_certificate_may_not_open_a_peer_stream(bob, certs):
    ca = (certs / "ca.pem").read_bytes()
    key, cert = _pem(certs, "coordinator")
    options = [("grpc.ssl_target_name_override", "bob")]
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    with grpc.secure_channel(bob, credentials, options=options) as channel:
        stub = peer_pb2_grpc.PeerStub(channel)
        hello = peer_pb2.PeerMessage(hello=peer_pb2.Hello(job_id="j", party="alice"))
        error = _refused(lambda: list(stub.Exchange(iter([hello]), timeout=10)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only from its peers ['alice']" in error.details()
    assert "names 'coordinator'" in error.details()


def test_plaintext_client_is_refused(bob):
    error = _refused(lambda: _describe(bob, None, None))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_client_without_certificate_is_refused(bob, certs):
    ca = (certs / "ca.pem").read_bytes()
    error = _refused(lambda: _describe(bob, ca, None))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_expired_client_certificate_is_refused(bob, certs, tmp_path):
    authority = load_authority(certs, None)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    key, cert = issue(authority, "coordinator", not_after=past)
    ca = (certs / "ca.pem").read_bytes()
    error = _refused(lambda: _describe(bob, ca, (key_pem(key, None), cert_pem(cert))))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_server_with_another_name_is_refused_by_the_client(bob, certs):
    ca = (certs / "ca.pem").read_bytes()
    files = _pem(certs, "coordinator")
    error = _refused(lambda: _describe(bob, ca, files, server_name="alice"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_coordinator_explains_a_failed_handshake(bob, certs, tmp_path):
    from splitrec.security.tls import TlsConfig, load_credentials

    write_bundle(tmp_path, ["coordinator"])
    credentials = load_credentials(
        TlsConfig(
            ca=tmp_path / "ca.pem",
            cert=tmp_path / "coordinator.pem",
            key=tmp_path / "coordinator.key",
        )
    )
    client = PartyClient("bob", bob, 10.0, credentials, "bob")
    try:
        with pytest.raises(PeerError) as error:
            client.describe(connect_timeout=2.0)
    finally:
        client.close()
    message = str(error.value)
    assert message.startswith(f"party bob at {bob}: Describe failed: UNAVAILABLE")
    assert "certificates of the same CA" in message
