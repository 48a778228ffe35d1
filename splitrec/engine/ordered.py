"""A function over a stream of chunks, results in order, few chunks in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

H = TypeVar("H")


class Engine(Protocol):
    """Runs a function on chunks. ``function`` is a module-level function
    (engines that run it elsewhere import it by name) called as
    ``function(*shared, chunk)``."""

    name: str

    @property
    def workers(self) -> int:
        """How many chunks it works on at once."""
        ...

    def map_ordered(
        self, function: Callable[..., Any], chunks: Iterable[Any], *shared: Any
    ) -> Iterator[Any]:
        """``function(*shared, chunk)`` of each chunk, in order, as they come;
        at most two chunks per worker are taken from ``chunks`` ahead of the
        one yielded."""
        ...


def in_order(
    chunks: Iterable[Any],
    submit: Callable[[Any], H],
    result: Callable[[H], Any],
    cancel: Callable[[H], object],
    window: int,
) -> Iterator[Any]:
    """``result(submit(chunk))`` of each chunk in order, with at most
    ``window`` submitted and not yet yielded; what is still pending when the
    caller stops early (or a result fails) is cancelled."""
    pending: deque[H] = deque()
    try:
        for chunk in chunks:
            pending.append(submit(chunk))
            if len(pending) >= window:
                yield result(pending.popleft())
        while pending:
            yield result(pending.popleft())
    finally:
        for handle in pending:
            cancel(handle)


class Inline:
    """Runs each chunk in the calling thread, when it is asked for."""

    name = "inline"
    workers = 1

    def map_ordered(
        self, function: Callable[..., Any], chunks: Iterable[Any], *shared: Any
    ) -> Iterator[Any]:
        return (function(*shared, chunk) for chunk in chunks)
