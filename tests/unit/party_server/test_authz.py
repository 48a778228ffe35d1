"""Authorization by certificate identity: who may call what on a party server."""

from __future__ import annotations

import grpc
import pytest

from splitrec.config.party import PartyConfig, PeerConfig
from splitrec.party_server.authz import AuthorizationInterceptor, Authorizer, caller_of

CONTROL = "/splitrec.v1.Control/PrepareJob"
PEER = "/splitrec.v1.Peer/Exchange"
HEALTH = "/grpc.health.v1.Health/Check"


class AbortedError(Exception):
    pass


class FakeContext:
    def __init__(self, common_name: str | None = None, dns: tuple = ()) -> None:
        self._auth = {}
        if common_name is not None:
            self._auth["x509_common_name"] = [common_name.encode()]
        if dns:
            self._auth["x509_subject_alternative_name"] = [d.encode() for d in dns]
        self.aborted: tuple | None = None

    def auth_context(self) -> dict:
        return self._auth

    def abort(self, code, details):
        self.aborted = (code, details)
        raise AbortedError(details)


def _config(**changes) -> PartyConfig:
    fields = dict(
        party="bob",
        listen="127.0.0.1:0",
        data=None,
        features=(),
        model=None,
        peers=(PeerConfig("alice", "alice:1", "alice.example.org"),),
        output_dir=None,
    )
    fields.update(changes)
    return PartyConfig.model_construct(**fields)


def test_caller_names_come_from_common_name_and_dns_names():
    caller = caller_of(FakeContext("alice", ("alice", "alice.example.org")))
    assert caller.names == {"alice", "alice.example.org"}
    assert caller.describe() == "'alice' (also alice.example.org)"
    assert caller_of(FakeContext()).describe() == "no certificate identity"


def test_control_service_only_for_the_coordinator():
    authorizer = Authorizer(_config(), secure=True)
    assert authorizer.refusal(CONTROL, caller_of(FakeContext("coordinator"))) is None
    refusal = authorizer.refusal(CONTROL, caller_of(FakeContext("alice.example.org")))
    assert (
        "accepts /splitrec.v1.Control/PrepareJob only from the coordinator" in refusal
    )
    assert "certificate names 'alice.example.org'" in refusal


def test_configured_coordinator_identity_is_used():
    authorizer = Authorizer(_config(coordinator_identity="ops-coord"), secure=True)
    assert authorizer.refusal(CONTROL, caller_of(FakeContext("coordinator")))
    assert authorizer.refusal(CONTROL, caller_of(FakeContext("ops-coord"))) is None


def test_peer_service_only_for_configured_peer_identities():
    authorizer = Authorizer(_config(), secure=True)
    assert authorizer.refusal(PEER, caller_of(FakeContext("alice.example.org"))) is None
    refusal = authorizer.refusal(PEER, caller_of(FakeContext("coordinator")))
    assert "only from its peers ['alice.example.org']" in refusal


def test_health_and_reflection_for_any_member():
    authorizer = Authorizer(_config(), secure=True)
    assert authorizer.refusal(HEALTH, caller_of(FakeContext("carol"))) is None


def test_hello_must_name_the_party_of_the_certificate():
    authorizer = Authorizer(_config(), secure=True)
    assert authorizer.check_hello(FakeContext("alice.example.org"), "alice") is None
    refusal = authorizer.check_hello(FakeContext("carol"), "alice")
    assert "says it comes from party 'alice'" in refusal and "'carol'" in refusal
    assert Authorizer(_config(), secure=False).check_hello(FakeContext(), "x") is None


def _handler(behaviour):
    return grpc.unary_unary_rpc_method_handler(behaviour)


class Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def test_interceptor_denies_before_the_handler_runs():
    calls = []
    interceptor = AuthorizationInterceptor(Authorizer(_config(), secure=True))
    guarded = interceptor.intercept_service(
        lambda _: _handler(lambda request, context: calls.append(request)),
        Details(CONTROL),
    )
    context = FakeContext("alice.example.org")
    with pytest.raises(AbortedError):
        guarded.unary_unary("request", context)
    assert context.aborted[0] == grpc.StatusCode.PERMISSION_DENIED
    assert calls == []
    guarded.unary_unary("request", FakeContext("coordinator"))
    assert calls == ["request"]


def test_interceptor_wants_a_certificate():
    interceptor = AuthorizationInterceptor(Authorizer(_config(), secure=True))
    guarded = interceptor.intercept_service(
        lambda _: _handler(lambda request, context: None), Details(HEALTH)
    )
    context = FakeContext()
    with pytest.raises(AbortedError):
        guarded.unary_unary("request", context)
    assert context.aborted[0] == grpc.StatusCode.UNAUTHENTICATED


def test_interceptor_passes_everything_in_insecure_mode():
    handler = _handler(lambda request, context: "ok")
    interceptor = AuthorizationInterceptor(Authorizer(_config(), secure=False))
    assert interceptor.intercept_service(lambda _: handler, Details(CONTROL)) is handler


def test_scoring_service_only_for_the_listed_clients():
    from splitrec.config.serving import ServingConfig

    serving = ServingConfig.model_construct(
        job="job", version="v1", table=None, key="MovieID", clients=("scorer",)
    )
    authorizer = Authorizer(_config(serving=serving), secure=True)
    score = "/splitrec.v1.Scoring/Score"
    assert authorizer.refusal(score, caller_of(FakeContext("scorer"))) is None
    refusal = authorizer.refusal(score, caller_of(FakeContext("coordinator")))
    assert "only from its scoring clients ['scorer'] (serving.clients)" in refusal
    unserved = Authorizer(_config(), secure=True)
    assert unserved.refusal(score, caller_of(FakeContext("scorer")))
