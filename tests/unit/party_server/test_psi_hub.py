"""The label party's PSI sessions: a stream joins only its own PrepareJob round,
so a stream left from an earlier try is never confused with a new one."""

from __future__ import annotations

import threading

import pytest

from splitrec.common.errors import PeerError
from splitrec.party_server.psi_hub import PsiHub


class FakeSession:
    def __init__(self, job_id: str, attempt: str) -> None:
        self.spec = type("Spec", (), {"job_id": job_id})()
        self.attempt = attempt
        self.failure: Exception | None = None

    def fail(self, error: Exception) -> None:
        self.failure = error


def test_a_stream_waits_for_the_session_of_its_own_round():
    hub = PsiHub()
    old = FakeSession("job", "round-1")
    hub.open(old)
    found = []
    waiter = threading.Thread(
        target=lambda: found.append(hub.session("job", "round-2", 10, lambda: False))
    )
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # round 1's session is not round 2's

    new = FakeSession("job", "round-2")
    hub.open(new)
    waiter.join(5)

    assert found == [new]
    assert isinstance(old.failure, PeerError)  # the earlier round is over
    assert "replaced by a newer alignment" in str(old.failure)


def test_a_stale_stream_gives_up_when_cancelled_or_after_its_timeout():
    hub = PsiHub()
    hub.open(FakeSession("job", "round-2"))
    with pytest.raises(PeerError, match="was cancelled"):
        hub.session("job", "round-1", 10, lambda: True)
    with pytest.raises(PeerError, match=r"\(round round-1\) started here within 0 s"):
        hub.session("job", "round-1", 0.2, lambda: False)


def test_closing_an_old_session_leaves_the_newer_one():
    hub = PsiHub()
    old, new = FakeSession("job", "a"), FakeSession("job", "b")
    hub.open(old)
    hub.open(new)
    hub.close(old)
    assert hub.session("job", "b", 1, lambda: False) is new
    hub.close(new)
    with pytest.raises(PeerError):
        hub.session("job", "b", 0.1, lambda: False)
