"""Domain errors to gRPC status codes, applied to every servicer method."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import grpc

from splitrec.common import errors
from splitrec.wire.rpc import PERMANENT_KEY

logger = logging.getLogger(__name__)

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.InvalidMessageError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.VersionTakenError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.CheckpointLostError, grpc.StatusCode.DATA_LOSS),
    (errors.DiskFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.RequestTooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.NotServingError, grpc.StatusCode.UNAVAILABLE),
    (errors.EngineError, grpc.StatusCode.UNAVAILABLE),
    (errors.StorageError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.OwnershipError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.UnknownJobError, grpc.StatusCode.NOT_FOUND),
    (errors.NotAllowedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.JobStateError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.HandshakeError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.DataError, grpc.StatusCode.FAILED_PRECONDITION),
]


# A peer's refusals that say the request cannot succeed: a party that fails
# because a peer refused it so answers with the peer's code, not UNAVAILABLE,
# so the coordinator ends the job instead of retrying.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


def status_code(error: Exception) -> grpc.StatusCode:
    """The code a refusal of ``error`` answers with. A ``PeerError`` (a peer
    failed this party) keeps the peer's code when it was a refusal
    (``_REFUSALS``), and is ``UNAVAILABLE`` otherwise: the peer was away, slow
    or restarted. Its ``permanent`` mark travels either way."""
    if isinstance(error, errors.PeerError):
        peer = grpc.StatusCode.__members__.get(error.code)
        return peer if peer in _REFUSALS else grpc.StatusCode.UNAVAILABLE
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def peer_failure(what: str, cause: Exception) -> errors.PeerError:
    """``PeerError`` for a failure in a peer's session (``what``: whose), with
    the code and permanence that ``cause`` would have been answered with."""
    return errors.PeerError(
        f"{what}: {cause}",
        status_code(cause).name,
        permanent=getattr(cause, "permanent", False),
    )


def _abort(context: grpc.ServicerContext, name: str, error: Exception) -> None:
    code = status_code(error)
    if getattr(error, "permanent", False):
        context.set_trailing_metadata(((PERMANENT_KEY, "1"),))
    if code == grpc.StatusCode.INTERNAL:
        logger.exception("%s failed unexpectedly", name)
        context.abort(code, f"{name}: internal error: {type(error).__name__}: {error}")
    logger.warning("%s refused: %s: %s", name, code.name, error)
    context.abort(code, f"{name}: {error}")


def rpc_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turns exceptions of a servicer method into a status code and message.

    Works for unary and server-streaming methods alike.
    """
    name = method.__name__
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def streaming(
            self: object, request: object, context: grpc.ServicerContext
        ) -> Any:
            try:
                yield from method(self, request, context)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                _abort(context, name, exc)

        return streaming

    @functools.wraps(method)
    def unary(self: object, request: object, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            _abort(context, name, exc)

    return unary
