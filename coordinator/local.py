"""Starts party servers as local processes (the demo and the integration tests)."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from splitrec.common.errors import JobFailedError
from splitrec.common.lifetime import child_environment
from splitrec.coordinator.local_configs import LocalConfigs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exit:
    returncode: int
    # The process's peak resident memory (its own, not its children's).
    peak_rss_bytes: int


def _high_water_mark(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM) in bytes, while it runs."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def wait_with_usage(process: subprocess.Popen, timeout: float) -> Exit | None:
    """Waits for a child and reads its peak memory; None if still running.

    The peak is read from /proc while the child runs: the kernel's exit figure
    (ru_maxrss) also counts the parent's memory at the time of the fork.
    """
    deadline = time.monotonic() + timeout
    peak: int | None = None
    while True:
        peak = _high_water_mark(process.pid) or peak
        try:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        except ChildProcessError:  # reaped already (Popen.poll)
            return Exit(process.returncode or 0, peak or 0)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return Exit(process.returncode, peak or usage.ru_maxrss * 1024)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


@dataclass
class LocalParty:
    name: str
    address: str
    process: subprocess.Popen
    log_path: Path
    exit: Exit | None = None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.exit is None:
            # Not Popen.send_signal: its poll() would reap a child that has
            # just exited before its peak memory is read.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            self.exit = wait_with_usage(self.process, timeout)
        if self.exit is None:
            logger.warning(
                "party %s did not stop in %.0f s; killing it", self.name, timeout
            )
            self.process.kill()
            self.exit = wait_with_usage(self.process, 30.0)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.exit.returncode if self.exit else -9


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_party(
    config: Path,
    log_path: Path,
    listen: str | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 120.0,
    prefix: tuple[str, ...] = (),
) -> LocalParty:
    """Starts ``splitrec-party`` and waits for its READY line.

    ``prefix`` runs the server through another command that ends by executing
    its arguments (``nice -n 10``, ``taskset -c 1``, ``unshare -m ...``).
    """
    command = [
        *prefix,
        sys.executable,
        "-m",
        "splitrec.party_server",
        "--config",
        str(config),
        *extra_args,
    ]
    if listen:
        command += ["--listen", listen]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():  # one log per run; the previous run's stays as .1
        log_path.replace(log_path.with_name(log_path.name + ".1"))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            env=child_environment(dict(os.environ)),
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=ready_timeout)
    except queue.Empty:
        line = None
    except BaseException:  # interrupted (a signal): the child must not linger
        process.kill()
        process.wait()
        raise
    if line is None or not line.startswith("READY "):
        process.kill()
        process.wait()
        raise JobFailedError(
            f"party server for {config} did not start (exit code "
            f"{process.returncode}); its log {log_path} ends with:\n"
            f"{_tail(log_path)}"
        )
    fields = dict(item.split("=", 1) for item in line.split()[1:])
    logger.info(
        "party %s is up at %s (pid %d, log: %s)",
        fields["party"],
        fields["address"],
        process.pid,
        log_path,
    )
    return LocalParty(fields["party"], fields["address"], process, log_path)


# How often a local federation is started on fresh ports when another process
# took one of them first.
START_ATTEMPTS = 3


class AddressedConfigs(Protocol):
    """Config files of a local federation whose addresses are set once the
    ports are picked (``LocalConfigs``, or configs built in Python)."""

    @property
    def parties(self) -> Mapping[str, Path]: ...

    def set_addresses(self, addresses: Mapping[str, str]) -> None: ...


class _Stoppable(Protocol):
    def stop(self) -> object: ...


Started = TypeVar("Started", bound=_Stoppable)


def bind_failed(error: BaseException | str) -> bool:
    """Whether a party server (its error or its output) could not bind its
    address: another process holds the port."""
    return "cannot listen on" in str(error)


def pick_port() -> int:
    """A loopback port free now: another process may take it before it is
    bound (see ``bind_failed``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_addresses(configs: AddressedConfigs) -> dict[str, str]:
    """A free loopback port per party (``pick_port``), written into every
    config: each party listens on its own and names its peers'."""
    addresses = {name: f"127.0.0.1:{pick_port()}" for name in configs.parties}
    configs.set_addresses(addresses)
    return addresses


def start_federation(
    configs: AddressedConfigs,
    start: Callable[[str, Path], Started],
    first: str | None = None,
) -> dict[str, Started]:
    """Starts every party of ``configs`` (``start(name, config)``), ``first``
    (the label party unless named) before the others, on loopback ports picked
    ahead and written into every config: each party knows its peers'
    addresses, and one started again from its config comes back at its own.

    When a party cannot bind its port (another process took it first), those
    already started are stopped and the whole start is made again on fresh
    ports, up to ``START_ATTEMPTS`` times; any other failure stops them too
    and goes on."""
    if first is None:
        assert isinstance(configs, LocalConfigs)
        first = configs.read("job")["label_party"]
    order = sorted(configs.parties, key=lambda n: n != first)
    attempt = 1
    while True:
        pick_addresses(configs)
        started: dict[str, Started] = {}
        try:
            for name in order:
                started[name] = start(name, configs.parties[name])
            return started
        except (OSError, JobFailedError) as exc:
            if not bind_failed(exc) or attempt == START_ATTEMPTS:
                raise
            logger.info("a port was taken (%s); starting again on fresh ports", exc)
            attempt += 1
        finally:
            if len(started) < len(order):
                for party in started.values():
                    party.stop()


def start_local_parties(
    configs: LocalConfigs,
    logs: Path,
    prefixes: Mapping[str, tuple[str, ...]] | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 120.0,
) -> dict[str, LocalParty]:
    """``start_federation`` with one ``splitrec-party`` per party, its
    log ``logs/<name>.log``; ``prefixes`` (by party), ``extra_args`` and
    ``ready_timeout`` as for ``start_party``."""
    prefixes = prefixes or {}

    def start(name: str, config: Path) -> LocalParty:
        return start_party(
            config,
            logs / f"{name}.log",
            extra_args=extra_args,
            ready_timeout=ready_timeout,
            prefix=prefixes.get(name, ()),
        )

    return start_federation(configs, start)
