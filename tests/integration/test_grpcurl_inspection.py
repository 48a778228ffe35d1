"""The README's grpcurl commands work against a running party server."""

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


def _grpcurl(address: str, *args: str) -> str:
    result = subprocess.run(
        [GRPCURL, "-plaintext", address, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(GRPCURL is None, reason="grpcurl is installed by `make install`")
def test_list_health_describe_and_status(party_files):
    with running_parties(party_files) as parties:
        address = f"127.0.0.1:{parties['bob'].port}"

        services = _grpcurl(address, "list").split()
        health = json.loads(_grpcurl(address, "grpc.health.v1.Health/Check"))
        described = _grpcurl(address, "describe", "splitrec.v1.Control")
        status = json.loads(_grpcurl(address, "splitrec.v1.Control/GetStatus"))

    assert {"splitrec.v1.Control", "splitrec.v1.Peer", "grpc.health.v1.Health"} <= set(
        services
    )
    assert health == {"status": "SERVING"}
    assert "rpc RunSteps" in described and "rpc GetStatus" in described
    assert status["party"] == "bob" and status["role"] == "ROLE_LABEL"
    assert status["peers"] == ["alice"] and status["state"] == "idle"
