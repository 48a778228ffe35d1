"""The one place that builds gRPC servers and channels.

Message size limits and keepalive are set here so that every server and channel
of the project agrees on them.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc

from common.serde import MAX_TENSOR_BYTES

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = MAX_TENSOR_BYTES + 1024 * 1024

_COMMON_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

_SERVER_OPTIONS = [
    *_COMMON_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
]


def create_server(address: str, max_workers: int = 32) -> tuple[grpc.Server, int]:
    """A server bound to ``address`` (port 0 picks a free port); returns the port.

    Raises ``OSError`` naming the address when it cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        options=_SERVER_OPTIONS,
        maximum_concurrent_rpcs=max_workers * 2,
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from None
    if port == 0:
        raise OSError(f"cannot listen on {address}: the address is in use or invalid")
    logger.warning("listening on %s WITHOUT TLS (insecure mode for local use)", address)
    return server, port


def create_channel(address: str) -> grpc.Channel:
    """A channel to ``address`` with the project's limits and keepalive."""
    return grpc.insecure_channel(address, options=_COMMON_OPTIONS)
