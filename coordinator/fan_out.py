"""One call at every party at once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.failures import most_telling

T = TypeVar("T")


def gather(
    clients: dict[str, PartyClient], call: Callable[[PartyClient], T]
) -> tuple[dict[str, T], dict[str, Exception]]:
    """``call(client)`` for every party concurrently; waits for every call to
    end and returns the results and the failures, by party name.

    When the caller is interrupted (a signal), the pool is not waited for: the
    calls end when the caller closes the clients' channels.
    """
    pool = ThreadPoolExecutor(len(clients), thread_name_prefix="party-call")
    try:
        futures = {name: pool.submit(call, c) for name, c in clients.items()}
        wait(futures.values())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    results, failures = {}, {}
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            results[name] = future.result()
        elif isinstance(error, Exception):
            failures[name] = error
        else:
            raise error
    return results, failures


def at_every_party(
    clients: dict[str, PartyClient], call: Callable[[PartyClient], T]
) -> dict[str, T]:
    """``call(client)`` for every party concurrently; results by party name.
    Once every call has ended, the most telling failure is raised (one that
    no retry fixes first, then in party order)."""
    results, failures = gather(clients, call)
    if failures:
        raise most_telling(failures.values())
    return results
