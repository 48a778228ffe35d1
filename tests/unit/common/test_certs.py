"""The development CA (splitrec.security.certs): certificates, keys, CLI, mutual TLS."""

from __future__ import annotations

import ipaddress
import stat
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from splitrec.security import certs


@pytest.fixture(scope="module")
def authority() -> certs.Authority:
    return certs.create_authority()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- certificates -------------------------------------------------------------


def test_authority_is_a_ca_that_signs_certificates(authority):
    cert = authority.cert
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(authority.key.curve, ec.SECP256R1)


def test_leaf_names_the_identity_and_the_extra_hosts(authority):
    _, cert = certs.issue(
        authority, "alice", hosts=["127.0.0.2", "alice.example.org", "::1", "alice"]
    )

    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "alice"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["alice", "alice.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.2"),
        ipaddress.ip_address("::1"),
    ]


def test_leaf_is_signed_by_the_ca_for_server_and_client_use(authority):
    key, cert = certs.issue(authority, "bob")

    cert.verify_directly_issued_by(authority.cert)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    key_id = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ca_id = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert key_id.value.key_identifier == ca_id.value.digest


def test_leaf_from_another_ca_of_the_same_name_does_not_verify(authority):
    _, cert = certs.issue(certs.create_authority(), "bob")
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(authority.cert)


def test_not_after_in_the_past_makes_an_expired_certificate(authority):
    now = datetime.now(UTC)
    _, cert = certs.issue(authority, "alice", not_after=now - timedelta(days=1))
    assert cert.not_valid_after_utc < now
    assert cert.not_valid_before_utc < cert.not_valid_after_utc


def test_default_validity_covers_now_for_the_given_days(authority):
    now = datetime.now(UTC)
    _, cert = certs.issue(authority, "alice", days=10)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now <= timedelta(days=10)


@pytest.mark.parametrize("identity", ["", "al ice", "a/b", "../x", "bob@home", "é"])
def test_invalid_identity_is_refused(authority, identity):
    with pytest.raises(ValueError, match="invalid identity"):
        certs.issue(authority, identity)


# --- key files ------------------------------------------------------------------


def test_encrypted_key_needs_the_right_password(authority, tmp_path):
    key, _ = certs.issue(authority, "alice")
    path = tmp_path / "alice.key"
    path.write_bytes(certs.key_pem(key, b"s3cret"))

    with pytest.raises(ValueError, match="password is needed") as missing:
        certs.load_private_key(path, None)
    with pytest.raises(ValueError, match="wrong password") as wrong:
        certs.load_private_key(path, b"guess")
    loaded = certs.load_private_key(path, b"s3cret")

    assert str(path) in str(missing.value) and str(path) in str(wrong.value)
    assert loaded.public_key() == key.public_key()


def test_unencrypted_key_loads_without_password(authority, tmp_path):
    key, _ = certs.issue(authority, "alice")
    path = tmp_path / "alice.key"
    path.write_bytes(certs.key_pem(key, None))
    assert certs.load_private_key(path, None).public_key() == key.public_key()


def test_missing_or_non_pem_key_file_is_reported_by_name(tmp_path):
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    with pytest.raises(ValueError, match="not found") as missing:
        certs.load_private_key(tmp_path / "absent.key", None)
    with pytest.raises(ValueError, match="not a PEM private key") as not_pem:
        certs.load_private_key(junk, None)
    assert "absent.key" in str(missing.value)
    assert "junk.key" in str(not_pem.value)


# --- bundles --------------------------------------------------------------------


def test_bundle_writes_ca_and_identity_files_with_private_keys(tmp_path):
    out = tmp_path / "certs"
    written = certs.write_bundle(out, ["alice", "bob"], hosts={"alice": ["10.1.2.3"]})

    names = {"ca.pem", "ca.key", "alice.pem", "alice.key", "bob.pem", "bob.key"}
    assert {path.name for path in written} == names
    assert {path.name for path in out.iterdir()} == names  # no temporary files left
    for name in ("ca.key", "alice.key", "bob.key"):
        assert _mode(out / name) == 0o600
    assert _mode(out / "alice.pem") == 0o644
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    alice = x509.load_pem_x509_certificate((out / "alice.pem").read_bytes())
    alice.verify_directly_issued_by(ca)
    san = alice.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]


def test_second_bundle_reuses_the_ca_and_adds_identities(tmp_path):
    certs.write_bundle(tmp_path, ["alice"])
    ca_before = (tmp_path / "ca.pem").read_bytes()

    written = certs.write_bundle(tmp_path, ["coordinator"])

    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    assert [path.name for path in written] == ["coordinator.key", "coordinator.pem"]
    assert (tmp_path / "alice.pem").exists()
    ca = x509.load_pem_x509_certificate(ca_before)
    coordinator = x509.load_pem_x509_certificate(
        (tmp_path / "coordinator.pem").read_bytes()
    )
    coordinator.verify_directly_issued_by(ca)


def test_encrypted_bundle_needs_the_password_to_reuse_the_ca(tmp_path):
    certs.write_bundle(tmp_path, ["alice"], password=b"pw")
    certs.load_private_key(tmp_path / "ca.key", b"pw")
    certs.load_private_key(tmp_path / "alice.key", b"pw")

    with pytest.raises(ValueError, match="ca.key.*password is needed"):
        certs.write_bundle(tmp_path, ["bob"])
    with pytest.raises(ValueError, match="ca.key.*wrong password"):
        certs.write_bundle(tmp_path, ["bob"], password=b"other")
    assert not (tmp_path / "bob.pem").exists()
    certs.write_bundle(tmp_path, ["bob"], password=b"pw")
    assert (tmp_path / "bob.pem").exists()


def test_bundle_with_half_a_ca_is_refused(tmp_path):
    certs.write_bundle(tmp_path, ["alice"])
    (tmp_path / "ca.key").unlink()
    with pytest.raises(ValueError, match="ca.pem exists but .*ca.key does not"):
        certs.write_bundle(tmp_path, ["bob"])


def test_bundle_refuses_hosts_for_unlisted_identities(tmp_path):
    with pytest.raises(ValueError, match="carol"):
        certs.write_bundle(tmp_path, ["alice"], hosts={"carol": ["127.0.0.1"]})
    assert list(tmp_path.iterdir()) == []


# --- command line ---------------------------------------------------------------


def test_cli_writes_the_bundle_and_prints_the_paths(tmp_path, capsys):
    out = tmp_path / "certs"
    code = certs.main(
        ["--out", str(out), "alice", "bob", "coordinator"]
        + ["--host", "alice=127.0.0.2", "--host", "alice=alice.example.org"]
    )

    assert code == 0
    printed = capsys.readouterr().out.split()
    assert {Path(line).name for line in printed} == {
        f"{name}.{ext}"
        for name in ("ca", "alice", "bob", "coordinator")
        for ext in ("pem", "key")
    }
    alice = x509.load_pem_x509_certificate((out / "alice.pem").read_bytes())
    san = alice.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["alice", "alice.example.org"]


def test_cli_reads_the_password_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"from-file\n")
    out = tmp_path / "certs"

    assert certs.main(["--out", str(out), "alice", "--password-file", str(secret)]) == 0
    certs.load_private_key(out / "alice.key", b"from-file")


def test_cli_reads_the_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITREC_TEST_PW", "from-env")
    out = tmp_path / "certs"

    assert (
        certs.main(["--out", str(out), "bob", "--password-env", "SPLITREC_TEST_PW"])
        == 0
    )
    certs.load_private_key(out / "bob.key", b"from-env")


def test_cli_fails_on_an_unset_password_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SPLITREC_TEST_PW", raising=False)
    code = certs.main(
        ["--out", str(tmp_path), "alice", "--password-env", "SPLITREC_TEST_PW"]
    )
    assert code == 2
    assert "SPLITREC_TEST_PW" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_fails_on_a_missing_password_file(tmp_path, capsys):
    missing = tmp_path / "absent"
    code = certs.main(
        ["--out", str(tmp_path), "alice", "--password-file", str(missing)]
    )
    assert code == 2
    assert "absent" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "message"),
    [("carol=127.0.0.1", "carol"), ("alice", "IDENTITY=HOST"), ("alice=", "IDENTITY")],
)
def test_cli_fails_on_a_bad_host(tmp_path, capsys, host, message):
    code = certs.main(["--out", str(tmp_path), "alice", "--host", host])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and message in err
    assert list(tmp_path.iterdir()) == []


# --- mutual TLS -----------------------------------------------------------------


@pytest.fixture
def bob_server(tmp_path):
    """A health server with bob's certificate that requires CA-signed clients."""
    out = tmp_path / "certs"
    certs.write_bundle(out, ["alice", "bob"])
    server_credentials = grpc.ssl_server_credentials(
        [((out / "bob.key").read_bytes(), (out / "bob.pem").read_bytes())],
        root_certificates=(out / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials)
    server.start()
    yield out, port
    server.stop(grace=None)


def _check_health(port: int, ca_pem: bytes, key: bytes, cert: bytes):
    credentials = grpc.ssl_channel_credentials(ca_pem, key, cert)
    with grpc.secure_channel(
        f"127.0.0.1:{port}",
        credentials,
        options=[("grpc.ssl_target_name_override", "bob")],
    ) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )


def test_bundle_serves_grpc_with_mutual_tls(bob_server):
    out, port = bob_server
    reply = _check_health(
        port,
        (out / "ca.pem").read_bytes(),
        (out / "alice.key").read_bytes(),
        (out / "alice.pem").read_bytes(),
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_refuses_a_client_certificate_from_another_ca(bob_server, tmp_path):
    out, port = bob_server
    stranger = tmp_path / "stranger"
    certs.write_bundle(stranger, ["alice"])

    with pytest.raises(grpc.RpcError) as refused:
        _check_health(
            port,
            (out / "ca.pem").read_bytes(),
            (stranger / "alice.key").read_bytes(),
            (stranger / "alice.pem").read_bytes(),
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
