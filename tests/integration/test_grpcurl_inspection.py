"""The README's grpcurl commands work against a running party server.

Run with the real grpcurl binary, without TLS and with the coordinator's
certificate against a mutual-TLS server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import running_parties

GRPCURL = shutil.which(
    "grpcurl", path=str(Path(sys.executable).parent)
) or shutil.which("grpcurl")

pytestmark = pytest.mark.skipif(
    GRPCURL is None, reason="grpcurl is installed by `make install`"
)


def _grpcurl(connection: list[str], *args: str, ok: bool = True) -> str:
    result = subprocess.run(
        [GRPCURL, *connection, *args], capture_output=True, text=True, timeout=30
    )
    assert (result.returncode == 0) == ok, result.stderr
    return result.stdout if ok else result.stderr


def _inspect(connection: list[str]) -> dict:
    services = _grpcurl(connection, "list").split()
    health = json.loads(_grpcurl(connection, "grpc.health.v1.Health/Check"))
    described = _grpcurl(connection, "describe", "splitrec.v1.Control")
    status = json.loads(_grpcurl(connection, "splitrec.v1.Control/GetStatus"))
    assert {"splitrec.v1.Control", "splitrec.v1.Peer", "grpc.health.v1.Health"} <= set(
        services
    )
    assert health == {"status": "SERVING"}
    assert "rpc RunSteps" in described and "rpc GetStatus" in described
    return status


def test_list_health_describe_and_status_without_tls(party_files):
    with running_parties(party_files) as parties:
        status = _inspect(["-plaintext", f"127.0.0.1:{parties['bob'].port}"])

    assert status["party"] == "bob" and status["role"] == "ROLE_LABEL"
    assert status["state"] == "idle" and status["transport_security"] == "insecure"
    assert status["protocol_version"] == "splitrec.v1"
    [peer] = status["peers"]
    assert peer["name"] == "alice" and peer["reachable"] is True


def test_list_health_describe_and_status_with_mutual_tls(tls_party_files, certs):
    coordinator = [
        "-cacert",
        str(certs / "ca.pem"),
        "-cert",
        str(certs / "coordinator.pem"),
        "-key",
        str(certs / "coordinator.key"),
        "-servername",
        "bob",
    ]
    with running_parties(tls_party_files) as parties:
        address = f"127.0.0.1:{parties['bob'].port}"
        status = _inspect([*coordinator, address])
        # Without a client certificate the handshake itself is refused.
        plain = _grpcurl(
            ["-cacert", str(certs / "ca.pem"), "-servername", "bob", address],
            "list",
            ok=False,
        )
        # alice's certificate is a member's: health yes, the control service no.
        alice = [*coordinator[:2], "-cert", str(certs / "alice.pem")]
        alice += ["-key", str(certs / "alice.key"), "-servername", "bob", address]
        _grpcurl(alice, "grpc.health.v1.Health/Check")
        denied = _grpcurl(alice, "splitrec.v1.Control/GetStatus", ok=False)

    assert status["party"] == "bob" and status["transport_security"] == "mutual-tls"
    [peer] = status["peers"]
    assert (peer["name"], peer["identity"], peer["reachable"]) == (
        "alice",
        "alice",
        True,
    )
    assert "Failed to dial" in plain or "handshake" in plain.lower()
    assert "PermissionDenied" in denied
    assert "accepts /splitrec.v1.Control/GetStatus only from the coordinator" in denied
    assert "certificate names 'alice'" in denied
