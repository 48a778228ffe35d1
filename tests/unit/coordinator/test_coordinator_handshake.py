"""Handshake checks on party descriptions, without servers."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from pathlib import Path

import pytest

from splitrec.common.errors import HandshakeError, PeerError
from splitrec.config.job import JobConfig
from splitrec.config.jobspec import PartyDescription
from splitrec.config.party import JobPartyConfig, PartyRole
from splitrec.coordinator.handshake import _prepare_all, check_descriptions, job_spec
from splitrec.wire.version import PROTOCOL_VERSION
from tests.outputs import deepfm_output, output_of

CONFIG = JobConfig(
    job="j",
    parties=(JobPartyConfig("alice", "a:1"), JobPartyConfig("bob", "b:2")),
    label_party="bob",
    source=Path("job.yaml"),
)


def _describe(name: str, role: PartyRole) -> PartyDescription:
    return PartyDescription(
        party=name,
        role=role,
        protocol_version=PROTOCOL_VERSION,
        num_rows=100,
        output=deepfm_output(32, 8),
        features=("f",),
        peers=(),
    )


def _pair(**bob_changes) -> dict[str, PartyDescription]:
    return {
        "alice": _describe("alice", PartyRole.FEATURE),
        "bob": dataclasses.replace(_describe("bob", PartyRole.LABEL), **bob_changes),
    }


def test_matching_parties_pass_and_give_the_job_spec():
    descriptions = _pair()
    check_descriptions(CONFIG, descriptions)
    spec = job_spec(CONFIG, descriptions)
    assert [p.name for p in spec.parties] == ["alice", "bob"]
    assert spec.feature_parties == ("alice",)
    assert spec.party("bob").role is PartyRole.LABEL
    assert spec.seed == 1234 and spec.batch_size == 128


def test_the_label_partys_aggregation_reaches_the_job_spec():
    descriptions = _pair(output=output_of("dnn", 42), aggregation="average")
    check_descriptions(CONFIG, descriptions)

    assert job_spec(CONFIG, descriptions).aggregation == "average"
    assert job_spec(CONFIG, _pair()).aggregation == "concat"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"party": "carol"}, "is party 'carol', but job.yaml lists it as 'bob'"),
        ({"protocol_version": "splitrec.v0"}, "speaks protocol 'splitrec.v0'"),
        ({"role": PartyRole.FEATURE}, "names 'bob' as label party"),
        ({"output": deepfm_output(32, 4)}, "embedding_dim per party"),
        (
            {"output": output_of("wide_deep")},
            "party alice's base is of model family 'deepfm', which a wide_deep "
            "fuse cannot take (it takes ['wide_deep'])",
        ),
        (
            {"output": output_of("dnn", 16), "aggregation": "sum"},
            "aggregation sum combines the base outputs element by element, but "
            "their widths differ: {'alice': 42, 'bob': 16}",
        ),
        (
            {"output": output_of("dnn", 42), "aggregation": "median"},
            "the label party's unknown aggregation 'median'",
        ),
    ],
)
def test_mismatches_are_refused_with_the_reason(changes, message):
    with pytest.raises(HandshakeError) as caught:
        check_descriptions(CONFIG, _pair(**changes))
    assert message in str(caught.value)


def test_secure_aggregation_and_identities_reach_the_job_spec():
    three = CONFIG.model_copy(
        update={
            "parties": (
                JobPartyConfig("alice", "a:1", identity="alice.example"),
                JobPartyConfig("carol", "c:3"),
                JobPartyConfig("bob", "b:2"),
            )
        }
    )
    dnn = output_of("dnn", 42)
    descriptions = {
        "alice": dataclasses.replace(_describe("alice", PartyRole.FEATURE), output=dnn),
        "carol": dataclasses.replace(_describe("carol", PartyRole.FEATURE), output=dnn),
        "bob": dataclasses.replace(
            _describe("bob", PartyRole.LABEL),
            output=dnn,
            aggregation="sum",
            secure_aggregation=True,
        ),
    }
    check_descriptions(three, descriptions)
    spec = job_spec(three, descriptions)
    assert spec.secure_aggregation
    assert [spec.identity(n) for n in ("alice", "carol")] == ["alice.example", "carol"]
    # With one feature party the sum would be that party's own output.
    with pytest.raises(HandshakeError, match="this job has 1; add a feature party"):
        check_descriptions(
            CONFIG, _pair(output=dnn, aggregation="sum", secure_aggregation=True)
        )


class _Refusing:
    """A party whose PrepareJob is refused with ``error`` (or answered)."""

    def __init__(self, error: PeerError | None) -> None:
        self.error = error

    def prepare(self, spec: object, timeout: float, attempt: str) -> Future:
        call: Future = Future()
        call.set_result(None)
        return call

    def prepared(self, call: Future) -> str:
        if self.error is not None:
            raise self.error
        return "prepared"


def _refusal(party: str, permanent: bool = True) -> PeerError:
    return PeerError(
        f"party {party} at x: PrepareJob failed: FAILED_PRECONDITION: party "
        f"{party}: model version 'v1' of job 'j': file state.npz is missing",
        "FAILED_PRECONDITION",
        "PrepareJob",
        permanent=permanent,
    )


def test_a_refused_preparation_names_every_party_that_refused():
    clients = {"alice": _Refusing(_refusal("alice")), "bob": _Refusing(_refusal("bob"))}
    with pytest.raises(PeerError) as caught:
        _prepare_all(None, clients, 5.0)
    assert "party alice: model version 'v1'" in str(caught.value)
    assert "party bob: model version 'v1'" in str(caught.value)
    assert caught.value.permanent and caught.value.code == "FAILED_PRECONDITION"
    # One permanent refusal beside a broken stream: the refusal alone.
    broken = PeerError("party bob at y: PrepareJob failed: UNAVAILABLE", "UNAVAILABLE")
    clients = {"alice": _Refusing(_refusal("alice")), "bob": _Refusing(broken)}
    with pytest.raises(PeerError) as caught:
        _prepare_all(None, clients, 5.0)
    assert str(caught.value) == str(_refusal("alice"))
