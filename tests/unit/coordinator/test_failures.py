"""Which failures end a job at once and which a recovery can fix."""

from __future__ import annotations

import pytest

from splitrec.common.errors import (
    HandshakeError,
    JobFailedError,
    OwnershipError,
    PeerError,
)
from splitrec.coordinator.failures import is_fatal, most_telling


@pytest.mark.parametrize(
    "error",
    [
        PeerError("disk full", "RESOURCE_EXHAUSTED", "SaveCheckpoint", permanent=True),
        PeerError("label changed", "FAILED_PRECONDITION", "PrepareJob", permanent=True),
        PeerError("bad request", "INVALID_ARGUMENT", "RunSteps"),
        PeerError("not the coordinator", "PERMISSION_DENIED", "Describe"),
        PeerError("no certificate", "UNAUTHENTICATED", "Describe"),
        JobFailedError("fingerprint changed", fatal=True),
        HandshakeError("bob is not the label party"),
        OwnershipError("another coordinator holds the job"),
    ],
)
def test_what_no_retry_fixes_is_fatal(error):
    assert is_fatal(error)


@pytest.mark.parametrize(
    "error",
    [
        PeerError("party died", "UNAVAILABLE", "RunSteps"),
        PeerError("too slow", "DEADLINE_EXCEEDED", "Evaluate"),
        PeerError("restarted", "NOT_FOUND", "RunSteps"),
        PeerError("a pass still runs", "FAILED_PRECONDITION", "RunSteps"),
        # gRPC's own concurrency limit: the same code as a full disk, unmarked.
        PeerError("Concurrent RPC limit exceeded!", "RESOURCE_EXHAUSTED", "RunSteps"),
        PeerError("checkpoint lost", "DATA_LOSS", "RestoreCheckpoint"),
        PeerError("no hold confirmed", "UNAVAILABLE"),
        JobFailedError("window failed"),
    ],
)
def test_what_a_recovery_fixes_is_not_fatal(error):
    assert not is_fatal(error)


def test_of_failures_at_several_parties_the_one_no_retry_fixes_is_reported():
    cancelled = PeerError("window cancelled", "CANCELLED", "RunSteps")
    away = PeerError("bob ended the stream: UNAVAILABLE", "UNAVAILABLE", "RunSteps")
    refused = PeerError(
        "bob ended the stream: FAILED_PRECONDITION: state.npz of epoch-1 at bob",
        "FAILED_PRECONDITION",
        "PrepareJob",
        permanent=True,
    )

    assert most_telling([away, refused, cancelled]) is refused
    assert most_telling([cancelled, away]) is away
    assert most_telling([cancelled]) is cancelled
