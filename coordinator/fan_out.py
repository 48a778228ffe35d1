"""One call at every party at once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from coordinator.client import PartyClient

T = TypeVar("T")


def at_every_party(
    clients: dict[str, PartyClient], call: Callable[[PartyClient], T]
) -> dict[str, T]:
    """``call(client)`` for every party concurrently; results by party name.

    The first failure (in party order) is raised. When the caller is
    interrupted (a signal), the pool is not waited for: the calls end when the
    caller closes the clients' channels.
    """
    pool = ThreadPoolExecutor(len(clients), thread_name_prefix="party-call")
    try:
        futures = {name: pool.submit(call, c) for name, c in clients.items()}
        results = {name: f.result() for name, f in futures.items()}
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results
