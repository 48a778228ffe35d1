"""The one place that builds gRPC servers and channels.

Message size limits and keepalive are set here so that every server and channel
of the project agrees on them. With credentials, servers demand a client
certificate from the federation's CA and channels check the server's certificate
against the identity configured for it (its name, not its address, so a party can
move between hosts or sit behind an IP address).

``SPLITREC_HOSTS`` (``name=address,name=address``) maps host names to addresses
for this process, like entries in ``/etc/hosts``: a config can name its peers
``bob:50052`` on a network without DNS for them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent import futures

import grpc

from splitrec.common.errors import ConfigError, PeerError
from splitrec.security.tls import Credentials
from splitrec.wire.serde import MAX_TENSOR_BYTES

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = MAX_TENSOR_BYTES + 1024 * 1024
HOSTS_VARIABLE = "SPLITREC_HOSTS"
# Trailing metadata a party sets on a refusal that no retry fixes (see
# ``SplitRecError.permanent``); the coordinator then ends the job at once.
PERMANENT_KEY = "splitrec-permanent"


def rpc_failure(
    what: str, error: grpc.RpcError, rpc: str = "", details: str | None = None
) -> PeerError:
    """``PeerError`` for a failed call: ``what``, the status code and the
    details (``details`` replaces the callee's). It keeps the code and whether
    the callee marked its refusal permanent, so whoever handles it next can
    tell a refusal from an outage."""
    code = error.code()
    trailing = error.trailing_metadata() or ()
    return PeerError(
        f"{what}: {code.name}: {error.details() if details is None else details}",
        code.name,
        rpc,
        permanent=any(key == PERMANENT_KEY for key, _ in trailing),
    )


_COMMON_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
# A client reconnects to a server that went away at least every 2 s, so a
# restarted party is reachable again soon.
_CLIENT_OPTIONS = [
    *_COMMON_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

_SERVER_OPTIONS = [
    *_COMMON_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
]


def host_overrides() -> dict[str, str]:
    """The name-to-address map of ``SPLITREC_HOSTS`` (empty when unset)."""
    overrides = {}
    for entry in filter(None, os.environ.get(HOSTS_VARIABLE, "").split(",")):
        name, sep, address = entry.strip().partition("=")
        if not sep or not name or not address:
            raise ConfigError(
                f"{HOSTS_VARIABLE}: entry {entry!r} is not name=address "
                "(example: bob=10.0.0.7,alice=10.0.0.6)"
            )
        overrides[name] = address
    return overrides


def resolve(address: str) -> str:
    """``host:port`` with the host replaced when ``SPLITREC_HOSTS`` maps it."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address
    return f"{host_overrides().get(host, host)}:{port}"


def create_server(
    address: str,
    credentials: Credentials | None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    max_workers: int = 32,
) -> tuple[grpc.Server, int]:
    """A server bound to ``address`` (port 0 picks a free port); returns the port.

    ``credentials`` ``None`` serves without TLS, with a warning. Raises
    ``OSError`` naming the address when it cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        options=_SERVER_OPTIONS,
        interceptors=list(interceptors),
        maximum_concurrent_rpcs=max_workers * 2,
    )
    bind = resolve(address)
    try:
        if credentials is None:
            port = server.add_insecure_port(bind)
        else:
            port = server.add_secure_port(bind, credentials.server())
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {bind}: {exc}") from None
    if port == 0:
        raise OSError(f"cannot listen on {bind}: the address is in use or invalid")
    if credentials is None:
        logger.warning(
            "INSECURE MODE: listening on %s WITHOUT TLS; anyone who can reach this "
            "port can call every RPC (local demos only)",
            bind,
        )
    else:
        logger.info("listening on %s with mutual TLS as %s", bind, credentials.identity)
    return server, port


def create_channel(
    address: str, credentials: Credentials | None, identity: str | None = None
) -> grpc.Channel:
    """A channel to ``address`` with the project's limits and keepalive.

    With credentials the server must present a certificate of the federation's
    CA naming ``identity`` (default: the address's host name).
    """
    target = resolve(address)
    if credentials is None:
        return grpc.insecure_channel(target, options=_CLIENT_OPTIONS)
    options = list(_CLIENT_OPTIONS)
    if identity:
        options.append(("grpc.ssl_target_name_override", identity))
    return grpc.secure_channel(target, credentials.channel(), options=options)
