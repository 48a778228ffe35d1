"""Asks a party server's gRPC health service whether it serves; exit 0 if it does.

``python -m splitrec.party_server.healthcheck --config alice.yaml`` dials the address
the config listens on, with the party's own certificate, so a container
healthcheck needs nothing but the files the party already has.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from splitrec.common.errors import SplitRecError  # noqa: E402
from splitrec.config.party import load_party_config  # noqa: E402
from splitrec.security.tls import load_credentials  # noqa: E402
from splitrec.wire.rpc import create_channel  # noqa: E402


def check(config_path: str, address: str | None, timeout: float) -> tuple[bool, str]:
    """``(serving, what was seen)`` for the party server of ``config_path``."""
    config = load_party_config(config_path)
    credentials = load_credentials(config.tls)
    target = address or config.listen
    identity = credentials.identity if credentials else None
    with create_channel(target, credentials, identity) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            return False, f"{target}: {exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.party_server.healthcheck",
        description="Exit 0 when the party server of a config file is serving.",
    )
    parser.add_argument("--config", required=True, help="the party's YAML config")
    parser.add_argument("--address", help="host:port to ask (default: 'listen')")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (5)")
    args = parser.parse_args(argv)
    try:
        serving, seen = check(args.config, args.address, args.timeout)
    except SplitRecError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 2
    print(seen, file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
