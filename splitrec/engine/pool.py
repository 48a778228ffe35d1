"""Worker processes of the party's own: the engine of small tables' PSI."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from splitrec.common.lifetime import exit_with_parent
from splitrec.engine.ordered import in_order


class ProcessPool:
    """A pool of worker processes, one per core by default. Use as a context
    manager; the workers start fresh (spawn), so a caller with running threads
    (gRPC, TensorFlow) is safe, and they leave on their own when this process
    dies, even by SIGKILL."""

    name = "pool"

    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def __enter__(self) -> ProcessPool:
        self._pool = ProcessPoolExecutor(
            self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def map_ordered(
        self, function: Callable[..., Any], chunks: Iterable[Any], *shared: Any
    ) -> Iterator[Any]:
        pool = self._pool
        assert pool is not None, "use ProcessPool as a context manager"
        return in_order(
            chunks,
            lambda chunk: pool.submit(function, *shared, chunk),
            Future.result,
            Future.cancel,
            2 * self._workers,
        )
