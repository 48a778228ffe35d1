"""A stop flag set by a signal handler while the main thread waits on it (an
``Event`` there can deadlock: its handler waits for the lock its own thread
holds)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from splitrec.common.signals import StopFlag


@pytest.fixture
def usr2_sets():
    flag = StopFlag()
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: flag.set())
    yield flag
    signal.signal(signal.SIGUSR2, previous)


def test_a_handler_sets_it_while_the_main_thread_waits(usr2_sets):
    # Signals keep coming while the wait goes on; each handler run must return.
    sender = threading.Timer(
        0.2, lambda: [os.kill(os.getpid(), signal.SIGUSR2) for _ in range(50)]
    )
    sender.start()
    usr2_sets.wait(every=0.001)
    sender.join()
    assert usr2_sets.is_set()


def test_another_thread_sets_it():
    flag = StopFlag()
    threading.Timer(0.1, flag.set).start()
    flag.wait(every=0.01)
    assert flag.is_set()


def test_the_wait_ends_when_its_condition_does():
    flag = StopFlag()
    left = iter([True, True, False])
    flag.wait(every=0.001, until=lambda: next(left))
    assert not flag.is_set()
