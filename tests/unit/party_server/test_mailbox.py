"""splitrec.party_server.mailbox: the label party's inbox and the outboxes."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
import pytest

from splitrec.common.errors import InvalidMessageError, JobStateError, PeerError
from splitrec.party_server.mailbox import END_OF_STREAM, Inbound, Mailbox, Outbox

TRAIN = 1
EVALUATE = 2
NOT_CANCELLED = threading.Event()
BLOCKED = 0.1  # how long a thread must stay blocked before we call it blocked


class Background:
    """Runs one call in a thread and keeps its result or its exception."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._call = call
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def blocked(self) -> bool:
        """Still running after a short wait."""
        self._thread.join(BLOCKED)
        return self._thread.is_alive()

    def finish(self, timeout: float = 2.0) -> Background:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background call did not return"
        return self


class Box(Mailbox):
    """A mailbox whose tensors come from one stream per sender and phase."""

    def __init__(self, senders: list[str], capacity: int = 64) -> None:
        super().__init__(senders, capacity)
        self.streams: dict[tuple[str, int], Inbound] = {}

    def send(self, sender: str, key: tuple, array: np.ndarray, timeout: float) -> None:
        stream = self.streams.setdefault((sender, key[0]), Inbound(sender, key[0]))
        self.put(stream, key, array, timeout)


def _array(value: float) -> np.ndarray:
    return np.full((2, 3), value, dtype=np.float32)


# --- put and take -------------------------------------------------------------


def test_take_returns_every_senders_array_in_sender_order():
    mailbox = Box(["alice", "carol"])
    from_alice, from_carol = _array(1.0), _array(2.0)
    mailbox.send("carol", (TRAIN, 0, 0), from_carol, timeout=1)
    mailbox.send("alice", (TRAIN, 0, 0), from_alice, timeout=1)

    arrays = mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)

    assert len(arrays) == 2
    assert arrays[0] is from_alice
    assert arrays[1] is from_carol


def test_take_returns_only_the_arrays_of_its_step():
    mailbox = Box(["alice"])
    mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)
    mailbox.send("alice", (TRAIN, 0, 1), _array(1.0), timeout=1)
    mailbox.send("alice", (EVALUATE, 0, 0), _array(9.0), timeout=1)

    first = mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)
    second = mailbox.take((TRAIN, 0, 1), timeout=1, cancelled=NOT_CANCELLED)
    evaluated = mailbox.take((EVALUATE, 0, 0), timeout=1, cancelled=NOT_CANCELLED)

    assert first[0][0, 0] == 0.0
    assert second[0][0, 0] == 1.0
    assert evaluated[0][0, 0] == 9.0


def test_take_waits_for_a_put_from_another_thread():
    mailbox = Box(["alice"])
    sent = _array(3.0)
    taker = Background(
        lambda: mailbox.take((TRAIN, 1, 4), timeout=2, cancelled=NOT_CANCELLED)
    )
    assert taker.blocked()

    mailbox.send("alice", (TRAIN, 1, 4), sent, timeout=1)

    taker.finish()
    assert taker.error is None
    assert taker.result[0] is sent


def test_take_waits_until_every_sender_has_put():
    mailbox = Box(["alice", "carol"])
    taker = Background(
        lambda: mailbox.take((TRAIN, 0, 0), timeout=2, cancelled=NOT_CANCELLED)
    )

    mailbox.send("alice", (TRAIN, 0, 0), _array(1.0), timeout=1)
    assert taker.blocked()
    mailbox.send("carol", (TRAIN, 0, 0), _array(2.0), timeout=1)

    taker.finish()
    assert [a[0, 0] for a in taker.result] == [1.0, 2.0]


def test_duplicate_put_is_refused():
    mailbox = Box(["alice"])
    mailbox.send("alice", (TRAIN, 0, 3), _array(1.0), timeout=1)

    with pytest.raises(JobStateError) as caught:
        mailbox.send("alice", (TRAIN, 0, 3), _array(2.0), timeout=1)

    assert str(caught.value) == "epoch 1 step 3 from alice was already received"
    taken = mailbox.take((TRAIN, 0, 3), timeout=1, cancelled=NOT_CANCELLED)
    assert taken[0][0, 0] == 1.0


@pytest.mark.parametrize(
    ("epoch", "step"), [(2, 5), (2, 4), (1, 9)], ids=["same", "earlier", "old-epoch"]
)
def test_put_of_a_step_already_taken_is_refused(epoch, step):
    mailbox = Box(["alice"])
    mailbox.send("alice", (TRAIN, 2, 5), _array(1.0), timeout=1)
    mailbox.take((TRAIN, 2, 5), timeout=1, cancelled=NOT_CANCELLED)

    with pytest.raises(JobStateError) as caught:
        mailbox.send("alice", (TRAIN, epoch, step), _array(2.0), timeout=1)

    assert str(caught.value) == (
        f"epoch {epoch + 1} step {step} from alice was already processed"
    )


def test_later_steps_and_other_phases_are_accepted_after_a_take():
    mailbox = Box(["alice"])
    mailbox.send("alice", (TRAIN, 2, 5), _array(1.0), timeout=1)
    mailbox.take((TRAIN, 2, 5), timeout=1, cancelled=NOT_CANCELLED)

    mailbox.send("alice", (TRAIN, 2, 6), _array(2.0), timeout=1)
    mailbox.send("alice", (TRAIN, 3, 0), _array(3.0), timeout=1)
    mailbox.send("alice", (EVALUATE, 0, 0), _array(4.0), timeout=1)

    assert mailbox.take((TRAIN, 2, 6), 1, NOT_CANCELLED)[0][0, 0] == 2.0
    assert mailbox.take((TRAIN, 3, 0), 1, NOT_CANCELLED)[0][0, 0] == 3.0
    assert mailbox.take((EVALUATE, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 4.0


# --- end_pass -----------------------------------------------------------------


def test_end_pass_drops_leftovers_and_allows_the_same_keys_again():
    mailbox = Box(["alice"], capacity=2)
    mailbox.send("alice", (TRAIN, 0, 0), _array(1.0), timeout=1)
    mailbox.send("alice", (TRAIN, 0, 1), _array(2.0), timeout=1)
    mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)

    mailbox.end_pass(TRAIN)

    with pytest.raises(PeerError):
        mailbox.take((TRAIN, 0, 1), timeout=0.02, cancelled=NOT_CANCELLED)
    # Both keys are new again, and the dropped leftover freed its room.
    mailbox.send("alice", (TRAIN, 0, 0), _array(5.0), timeout=0.02)
    mailbox.send("alice", (TRAIN, 0, 1), _array(6.0), timeout=0.02)
    assert mailbox.take((TRAIN, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 5.0
    assert mailbox.take((TRAIN, 0, 1), 1, NOT_CANCELLED)[0][0, 0] == 6.0


def test_end_pass_keeps_other_phases():
    mailbox = Box(["alice"])
    mailbox.send("alice", (TRAIN, 0, 0), _array(1.0), timeout=1)
    mailbox.send("alice", (EVALUATE, 0, 0), _array(2.0), timeout=1)

    mailbox.end_pass(EVALUATE)

    assert mailbox.take((TRAIN, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 1.0
    with pytest.raises(PeerError):
        mailbox.take((EVALUATE, 0, 0), timeout=0.02, cancelled=NOT_CANCELLED)


# --- capacity -----------------------------------------------------------------


def test_full_inbox_blocks_a_sender_until_a_take():
    mailbox = Box(["alice"], capacity=1)
    mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)
    sender = Background(
        lambda: mailbox.send("alice", (TRAIN, 0, 1), _array(1.0), timeout=2)
    )
    assert sender.blocked()

    mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)

    sender.finish()
    assert sender.error is None
    assert mailbox.take((TRAIN, 0, 1), 1, NOT_CANCELLED)[0][0, 0] == 1.0


def test_capacity_is_counted_per_sender():
    mailbox = Box(["alice", "carol"], capacity=1)
    mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)

    # No time to wait for room: the send succeeds only if carol has room now.
    mailbox.send("carol", (TRAIN, 0, 0), _array(0.0), timeout=0)

    assert len(mailbox.take((TRAIN, 0, 0), 1, NOT_CANCELLED)) == 2


def test_put_without_room_in_time_raises_peer_error():
    mailbox = Box(["alice"], capacity=1)
    mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)

    with pytest.raises(PeerError) as caught:
        mailbox.send("alice", (TRAIN, 0, 1), _array(1.0), timeout=0.02)

    assert str(caught.value) == (
        "the label party did not consume alice's tensors within 0.02 s"
    )


def test_two_waiting_puts_of_the_same_key_store_it_once():
    # Prepare: the inbox is full, so two puts of step 1 both wait for room.
    mailbox = Box(["alice"], capacity=1)
    mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)
    first = Background(lambda: mailbox.send("alice", (TRAIN, 0, 1), _array(1.0), 2))
    second = Background(lambda: mailbox.send("alice", (TRAIN, 0, 1), _array(1.0), 2))
    assert first.blocked() and second.blocked()

    # Execute: make room; one put stores step 1; take it.
    mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)
    mailbox.take((TRAIN, 0, 1), timeout=1, cancelled=NOT_CANCELLED)

    # Assert: the other put is refused, since step 1 was received and taken.
    errors = [b.finish().error for b in (first, second)]
    assert sum(e is None for e in errors) == 1
    assert sum(isinstance(e, JobStateError) for e in errors) == 1


# --- timeouts, cancellation, failure ------------------------------------------


def test_take_timeout_names_the_missing_sender():
    mailbox = Box(["alice", "carol"])
    mailbox.send("alice", (TRAIN, 3, 7), _array(1.0), timeout=1)

    with pytest.raises(PeerError) as caught:
        mailbox.take((TRAIN, 3, 7), timeout=0.02, cancelled=NOT_CANCELLED)

    message = str(caught.value)
    assert message.startswith("no hidden tensor from ['carol'] for epoch 4 step 7")
    assert "is that party running?" in message


def test_take_timeout_keeps_what_did_arrive():
    mailbox = Box(["alice", "carol"])
    mailbox.send("alice", (TRAIN, 0, 0), _array(1.0), timeout=1)
    with pytest.raises(PeerError):
        mailbox.take((TRAIN, 0, 0), timeout=0.02, cancelled=NOT_CANCELLED)

    mailbox.send("carol", (TRAIN, 0, 0), _array(2.0), timeout=1)

    taken = mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)
    assert [a[0, 0] for a in taken] == [1.0, 2.0]


def test_take_of_a_cancelled_pass_raises_job_state_error():
    mailbox = Box(["alice"])
    cancelled = threading.Event()
    cancelled.set()

    with pytest.raises(JobStateError, match="the pass was cancelled"):
        mailbox.take((TRAIN, 0, 0), timeout=5, cancelled=cancelled)


def test_cancelling_a_waiting_take_ends_it_well_before_its_timeout():
    mailbox = Box(["alice"])
    cancelled = threading.Event()
    taker = Background(lambda: mailbox.take((TRAIN, 0, 0), 10, cancelled))
    assert taker.blocked()

    cancelled.set()

    taker.finish(timeout=2)
    assert isinstance(taker.error, JobStateError)


def test_fail_wakes_a_waiting_take_with_the_given_error():
    mailbox = Box(["alice"])
    failure = PeerError("alice went away")
    taker = Background(lambda: mailbox.take((TRAIN, 0, 0), 10, NOT_CANCELLED))
    assert taker.blocked()

    mailbox.fail(failure)

    assert taker.finish().error is failure


def test_fail_wakes_a_sender_waiting_for_room_with_the_given_error():
    mailbox = Box(["alice"], capacity=1)
    mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)
    failure = JobStateError("the job ended")
    sender = Background(lambda: mailbox.send("alice", (TRAIN, 0, 1), _array(1.0), 10))
    assert sender.blocked()

    mailbox.fail(failure)

    assert sender.finish().error is failure


def test_put_and_take_after_fail_raise_the_error():
    mailbox = Box(["alice"])
    failure = PeerError("broken")
    mailbox.fail(failure)

    with pytest.raises(PeerError) as put_error:
        mailbox.send("alice", (TRAIN, 0, 0), _array(0.0), timeout=1)
    with pytest.raises(PeerError) as take_error:
        mailbox.take((TRAIN, 0, 0), timeout=1, cancelled=NOT_CANCELLED)

    assert put_error.value is failure
    assert take_error.value is failure


# --- streams ------------------------------------------------------------------


def test_a_newer_streams_first_tensor_replaces_the_older_stream():
    mailbox = Mailbox(["alice"], capacity=2)
    older, newer = Inbound("alice", TRAIN), Inbound("alice", TRAIN)
    mailbox.put(older, (TRAIN, 0, 0), _array(1.0), timeout=1)
    mailbox.put(older, (TRAIN, 0, 1), _array(2.0), timeout=1)
    assert mailbox.answering("alice", TRAIN) is older.outbox

    # The older stream's step 0 is not taken yet: the newer one sends it again.
    mailbox.put(newer, (TRAIN, 0, 0), _array(5.0), timeout=0.02)

    assert mailbox.answering("alice", TRAIN) is newer.outbox
    assert older.outbox.get(timeout=1) is END_OF_STREAM
    assert mailbox.take((TRAIN, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 5.0
    with pytest.raises(PeerError):  # the older stream's step 1 went with it
        mailbox.take((TRAIN, 0, 1), timeout=0.02, cancelled=NOT_CANCELLED)
    with pytest.raises(JobStateError, match="replaced by a newer one or failed"):
        mailbox.put(older, (TRAIN, 0, 2), _array(3.0), timeout=1)


def test_a_stream_that_stores_nothing_replaces_nothing():
    mailbox = Mailbox(["alice"])
    current = Inbound("alice", TRAIN)
    mailbox.put(current, (TRAIN, 0, 0), _array(1.0), timeout=1)
    Inbound("alice", TRAIN)  # opened, then refused before it stored anything

    assert mailbox.answering("alice", TRAIN) is current.outbox
    assert mailbox.take((TRAIN, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 1.0


def test_streams_of_other_phases_do_not_replace_each_other():
    mailbox = Mailbox(["alice"])
    training, evaluation = Inbound("alice", TRAIN), Inbound("alice", EVALUATE)
    mailbox.put(training, (TRAIN, 0, 0), _array(1.0), timeout=1)
    mailbox.put(evaluation, (EVALUATE, 0, 0), _array(2.0), timeout=1)

    assert mailbox.answering("alice", TRAIN) is training.outbox
    assert mailbox.take((TRAIN, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 1.0
    assert mailbox.take((EVALUATE, 0, 0), 1, NOT_CANCELLED)[0][0, 0] == 2.0


def test_drop_removes_what_a_stream_stored_and_frees_its_room():
    mailbox = Mailbox(["alice"], capacity=1)
    failed = Inbound("alice", TRAIN)
    mailbox.put(failed, (TRAIN, 0, 3), _array(1.0), timeout=1)

    mailbox.drop(failed)

    assert mailbox.answering("alice", TRAIN) is None
    with pytest.raises(PeerError):
        mailbox.take((TRAIN, 0, 3), timeout=0.02, cancelled=NOT_CANCELLED)
    # The step is free again, and there is room for it.
    mailbox.put(Inbound("alice", TRAIN), (TRAIN, 0, 3), _array(2.0), timeout=0.02)
    assert mailbox.take((TRAIN, 0, 3), 1, NOT_CANCELLED)[0][0, 0] == 2.0


@pytest.mark.parametrize(
    ("epoch", "step"),
    [(0, 4), (0, 6), (0, 3), (1, 5)],
    ids=["repeat", "gap", "back", "epoch"],
)
def test_a_stream_sends_its_steps_in_order(epoch, step):
    stream = Inbound("alice", TRAIN)
    stream.check_next(0, 9)  # any first step
    stream.last = (0, 4)
    stream.check_next(0, 5)

    with pytest.raises(InvalidMessageError) as caught:
        stream.check_next(epoch, step)

    assert str(caught.value) == (
        f"alice sent epoch {epoch + 1} step {step} after epoch 1 step 4; a stream "
        "sends a pass's steps in order, each once (expected epoch 1 step 5)"
    )


# --- Outbox -------------------------------------------------------------------


def test_outbox_returns_items_in_order_then_end_of_stream():
    outbox = Outbox()
    outbox.put("gradient-0")
    outbox.put("gradient-1")
    outbox.close()

    items = [outbox.get(timeout=1) for _ in range(3)]

    assert items == ["gradient-0", "gradient-1", END_OF_STREAM]


def test_outbox_get_on_an_empty_outbox_times_out():
    outbox = Outbox()

    with pytest.raises(queue.Empty):
        outbox.get(timeout=0.01)


def test_outbox_get_waits_for_a_put_from_another_thread():
    outbox = Outbox()
    getter = Background(lambda: outbox.get(timeout=2))
    assert getter.blocked()

    outbox.put("gradient")

    assert getter.finish().result == "gradient"
