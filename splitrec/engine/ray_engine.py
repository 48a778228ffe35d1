"""Tasks of a Ray cluster of the party's own: a local instance, or the cluster
its config names.

Ray keeps one connection per process, so parties that share a process (tests,
notebooks) share it: the first one connects, the last one to close leaves.
A local instance listens on loopback only. Each chunk is one task; what every
task needs (a PSI key) is put into the cluster's object store once per map.
The tasks run on whichever nodes have CPUs free; ``tasks_by_node`` counts
where they ran.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from splitrec.common.errors import EngineError, SplitRecError
from splitrec.config.engine import RAY_CLIENT, EngineConfig
from splitrec.engine.ordered import in_order

logger = logging.getLogger(__name__)

LOCAL = "local"
# A local instance's object store: what is in flight (two chunks per CPU each
# way) fits many times over; Ray's default (30% of the host's memory) would let
# the pages the party has touched there grow with its table.
_STORE_BYTES_PER_CPU = 64 * 1024 * 1024
_STORE_MIN_BYTES = 256 * 1024 * 1024
# How long the reachability check of a named cluster's address waits at most.
_PROBE_SECONDS = 10.0


def _run(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """A task: the node it ran on, and ``function(*args)``."""
    import ray

    return ray.get_runtime_context().get_node_id(), function(*args)


class _Connection:
    """This process's one connection to Ray, and how many engines use it."""

    lock = threading.Lock()
    target: str | None = None
    users = 0
    task: Any = None
    # Set to let the thread that started Ray end (after ``ray.shutdown``).
    leave: threading.Event | None = None


class RayEngine:
    """Runs chunks as Ray tasks (see the module's text)."""

    name = "ray"

    def __init__(self, target: str) -> None:
        self.target = target
        self.tasks_by_node: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        self._closed = False

    @property
    def workers(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map_ordered(
        self, function: Callable[..., Any], chunks: Iterable[Any], *shared: Any
    ) -> Iterator[Any]:
        import ray

        task = _Connection.task
        if self._closed or task is None:
            raise EngineError(f"the Ray engine ({self.target}) is closed")
        refs = [ray.put(value) for value in shared]
        return in_order(
            chunks,
            lambda chunk: task.remote(function, *refs, chunk),
            lambda ref: self._result(ref, function),
            ray.cancel,
            2 * self.workers,
        )

    def _result(self, ref: Any, function: Callable[..., Any]) -> Any:
        import ray

        try:
            node, value = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, (SplitRecError, ValueError)):
                raise cause from None
            raise self._failed(function, exc) from None
        except ray.exceptions.RayError as exc:
            raise self._failed(function, exc) from None
        with self._count_lock:
            self.tasks_by_node[node] += 1
        return value

    def _failed(self, function: Callable[..., Any], exc: Exception) -> EngineError:
        text = str(exc).strip().splitlines()
        return EngineError(
            f"a {function.__name__} task failed on the Ray engine ({self.target}): "
            f"{text[-1] if text else type(exc).__name__}; check the cluster's "
            "nodes and their logs, then run the job again"
        )

    def close(self) -> None:
        """Leaves the cluster (a local instance stops) once no engine of this
        process uses it."""
        import ray

        with _Connection.lock:
            if self._closed:
                return
            self._closed = True
            _Connection.users -= 1
            if _Connection.users == 0:
                _Connection.target = None
                _Connection.task = None
                ray.shutdown()
                if _Connection.leave is not None:
                    _Connection.leave.set()
                    _Connection.leave = None


def _probe(address: str, config: EngineConfig, where: str) -> None:
    """Refuses an address nothing listens at, quickly and by name (Ray itself
    would retry for minutes)."""
    host, _, port = address.removeprefix(RAY_CLIENT).rpartition(":")
    try:
        with socket.create_connection(
            (host.strip("[]"), int(port)), min(_PROBE_SECONDS, config.connect_seconds)
        ):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise EngineError(
            f"{where}: the Ray cluster at engine.address {address!r} cannot be "
            f"reached ({reason}); start it, or fix or remove engine.address"
        ) from None


def _init(config: EngineConfig) -> None:
    import ray

    options: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "configure_logging": False,
    }
    if config.address is None:
        cpus = config.cpus or os.cpu_count() or 1
        # address="local": never a cluster RAY_ADDRESS may name.
        ray.init(
            address=LOCAL,
            num_cpus=cpus,
            object_store_memory=max(_STORE_MIN_BYTES, cpus * _STORE_BYTES_PER_CPU),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **options,
        )
    elif config.address.startswith(RAY_CLIENT):
        ray.init(address=config.address, **options)
    else:
        ray.init(
            address=config.address, _node_ip_address=config.node_address, **options
        )


def _init_within(config: EngineConfig, where: str) -> threading.Event:
    """``_init`` on a thread of its own that lives until the returned event is
    set: Ray ties a local instance's processes to the thread that started
    them (they get SIGKILL when it ends), so it must not be a passing job's.
    Given up after ``connect_seconds`` (a wrong port that accepts connections
    would otherwise hold the party's start forever)."""
    failed: list[BaseException] = []
    ready, leave = threading.Event(), threading.Event()

    def own() -> None:
        try:
            _init(config)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)
            return
        finally:
            ready.set()
        leave.wait()

    threading.Thread(target=own, name="ray-engine", daemon=True).start()
    target = config.address or "a local instance"
    if not ready.wait(config.connect_seconds):
        raise EngineError(
            f"{where}: the Ray cluster at {target} did not answer within "
            f"{config.connect_seconds:g} s (engine.connect_seconds); check that "
            "engine.address is its head's address, or raise the limit"
        )
    if failed:
        reason = str(failed[0]).strip().splitlines() or [type(failed[0]).__name__]
        raise EngineError(
            f"{where}: cannot start or join Ray at {target}: {reason[0]}"
        ) from None
    return leave


def connect(config: EngineConfig, where: str) -> RayEngine:
    """An engine on the cluster ``config`` names, or on a local instance;
    ``where`` names the party and its config for messages."""
    target = config.address or LOCAL
    if importlib.util.find_spec("ray") is None:
        raise EngineError(
            f"{where}: the engine at {target} needs Ray, which is not installed "
            "here; pip install 'splitrec[engine]'"
        )
    with _Connection.lock:
        if _Connection.target is None:
            if config.address is not None:
                _probe(config.address, config, where)
            _Connection.leave = _init_within(config, where)
            import ray

            _Connection.target = target
            _Connection.task = ray.remote(_run)
            logger.info(
                "%s: Ray engine at %s, %d CPUs",
                where,
                target,
                int(ray.cluster_resources().get("CPU", 0)),
            )
        elif _Connection.target != target:
            raise EngineError(
                f"{where}: this process already uses the Ray engine at "
                f"{_Connection.target}, and Ray allows one per process; run the "
                f"party (engine {target}) in a process of its own"
            )
        _Connection.users += 1
    return RayEngine(target)
