"""Who may call what on a party server, decided by the caller's certificate.

With mutual TLS the handshake has already proved that the caller holds a key
certified by the federation's CA; this module decides what that identity may do:

- the control service: only the configured coordinator;
- the peer service: only configured peers (and a stream's ``Hello`` must name
  the party the certificate belongs to);
- the scoring service: only the clients listed in ``serving.clients``;
- health and reflection: any member of the federation.

An identity matches a certificate when it equals its common name or one of its
DNS subject alternative names. In insecure mode nothing is checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from splitrec.config.party import PartyConfig
from splitrec.v1 import control_pb2, peer_pb2, scoring_pb2

_CONTROL = "/" + control_pb2.DESCRIPTOR.services_by_name["Control"].full_name + "/"
_PEER = "/" + peer_pb2.DESCRIPTOR.services_by_name["Peer"].full_name + "/"
_SCORING = "/" + scoring_pb2.DESCRIPTOR.services_by_name["Scoring"].full_name + "/"


@dataclass(frozen=True)
class Caller:
    """The names a caller's certificate carries (empty without TLS)."""

    common_name: str
    dns_names: tuple[str, ...]

    @property
    def names(self) -> set[str]:
        return {self.common_name, *self.dns_names} - {""}

    def describe(self) -> str:
        if not self.names:
            return "no certificate identity"
        extra = [n for n in self.dns_names if n != self.common_name]
        alt = f" (also {', '.join(extra)})" if extra else ""
        return f"{self.common_name or '<no common name>'!r}{alt}"


def caller_of(context: grpc.ServicerContext) -> Caller:
    auth = context.auth_context()

    def values(key: str) -> list[str]:
        return [v.decode(errors="replace") for v in auth.get(key, [])]

    common = values("x509_common_name")
    return Caller(
        common[0] if common else "", tuple(values("x509_subject_alternative_name"))
    )


class Authorizer:
    """The access rules of one party, from its config."""

    def __init__(self, config: PartyConfig, secure: bool) -> None:
        self.secure = secure
        self.party = config.party
        self.coordinator = config.coordinator_identity
        self.peers = {p.name: p.expected_identity for p in config.peers}
        self.clients = config.serving.clients if config.serving else ()

    def refusal(self, method: str, caller: Caller) -> str | None:
        """Why ``caller`` may not call ``method`` (``None``: it may)."""
        if method.startswith(_CONTROL):
            allowed: Iterable[str] = (self.coordinator,)
            who = f"the coordinator ({self.coordinator!r})"
        elif method.startswith(_PEER):
            allowed = self.peers.values()
            who = f"its peers {sorted(self.peers.values())}"
        elif method.startswith(_SCORING):
            allowed = self.clients
            who = f"its scoring clients {sorted(self.clients)} (serving.clients)"
        else:
            return None
        if caller.names & set(allowed):
            return None
        return (
            f"party {self.party} accepts {method} only from {who}; the caller's "
            f"certificate names {caller.describe()}"
        )

    def check_hello(self, context: grpc.ServicerContext, party: str) -> str | None:
        """Why a peer stream's ``Hello`` naming ``party`` is refused, if it is."""
        if not self.secure:
            return None
        caller = caller_of(context)
        expected = self.peers.get(party)
        if expected is not None and expected in caller.names:
            return None
        return (
            f"the stream says it comes from party {party!r}, but the caller's "
            f"certificate names {caller.describe()}"
        )


class AuthorizationInterceptor(grpc.ServerInterceptor):
    """Refuses, before the handler runs, calls the ``Authorizer`` does not allow."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or not self._authorizer.secure:
            return handler
        return _guarded(handler, handler_call_details.method, self._authorizer)


_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _guarded(
    handler: grpc.RpcMethodHandler, method: str, authorizer: Authorizer
) -> grpc.RpcMethodHandler:
    kind = next((k for k in _FACTORIES if getattr(handler, k) is not None), None)
    if kind is None:
        return handler
    behaviour = getattr(handler, kind)

    def checked(request: Any, context: grpc.ServicerContext) -> Any:
        caller = caller_of(context)
        if not caller.names:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"{method} needs a client certificate from the federation's CA",
            )
        reason = authorizer.refusal(method, caller)
        if reason is not None:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        return behaviour(request, context)

    return _FACTORIES[kind](
        checked,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
