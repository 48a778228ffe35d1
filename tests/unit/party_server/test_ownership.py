"""Which coordinator holds a job at a party."""

from __future__ import annotations

import threading

import pytest

from splitrec.common.errors import OwnershipError
from splitrec.party_server.ownership import JobOwners


def test_a_held_job_refuses_another_claim_naming_the_holder():
    owners = JobOwners()
    owners.claim("job", "first", "coordinator pid 1 on a", stream=True)

    with pytest.raises(OwnershipError) as caught:
        owners.claim("job", "second", "coordinator pid 2 on b", stream=True)

    assert "job 'job' is driven by coordinator pid 1 on a (since" in str(caught.value)
    owners.check("job", "first")
    with pytest.raises(OwnershipError, match="this call comes from another"):
        owners.check("job", "second")


def test_once_the_holder_lets_go_the_next_claim_takes_over():
    owners = JobOwners()
    owners.claim("job", "first", "one", stream=True)
    owners.release("job", "first")

    owners.claim("job", "second", "two", stream=True)

    assert owners.describe("job").startswith("two (since")
    with pytest.raises(OwnershipError):
        owners.check("job", "first")  # the old holder's late calls are refused


def test_a_holder_learns_when_it_was_taken_over():
    owners = JobOwners()
    owners.claim("job", "first", "one")  # a claim by PrepareJob holds no stream
    assert owners.held_by("job", "first", 0.01)
    taken = threading.Timer(0.1, lambda: owners.claim("job", "second", "two"))
    taken.start()

    assert not owners.held_by("job", "first", 5.0)
    taken.join()


def test_jobs_are_held_independently():
    owners = JobOwners()
    owners.claim("a", "first", "one", stream=True)
    owners.claim("b", "second", "two", stream=True)
    owners.check("a", "first")
    owners.check("b", "second")
    owners.check("never-claimed", "anyone")


def test_a_waiting_hold_returns_as_soon_as_its_stream_ends():
    """A HoldJob handler waits a heartbeat for news; when its call ends, the
    release wakes it at once (a stopping server need not wait for it)."""
    owners = JobOwners()
    owners.claim("job", "a", "coordinator a", stream=True)
    open_ = threading.Event()
    open_.set()
    done = threading.Event()

    def wait() -> None:
        owners.held_by("job", "a", 600.0, open_.is_set)
        done.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    open_.clear()
    owners.release("job", "a")
    assert done.wait(30.0), "the wait outlived its stream"
