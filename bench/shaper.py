"""A user-space TCP shaper: one-way delay, jitter and bandwidth between two parties.

``Shaper`` listens on an address and forwards every accepted connection to a
target, holding each direction's bytes as a link would: a chunk of ``n`` bytes
occupies the link ``8 n / rate`` seconds, then travels the one-way delay (plus a
random jitter) before it is written on. Release times never decrease, so bytes
keep their order; each direction of a connection holds at most ``buffer_bytes``,
beyond which the shaper stops reading and TCP's flow control stops the sender.

One background thread serves all connections with ``poll``: it sleeps until the
next release time or the next socket event, never spins.

``python -m splitrec.bench.shaper --listen H:P --target H:P --rtt-ms 50`` runs one
until SIGINT or SIGTERM; ``python -m splitrec.bench.shaper measure`` measures how
closely it reproduces a few links (see ``docs/networks.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import errno
import json
import logging
import math
import os
import platform
import queue
import random
import select
import signal
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

from splitrec.common.lifetime import child_environment, stop_with_parent
from splitrec.common.signals import StopFlag

logger = logging.getLogger(__name__)

CHUNK_BYTES = 16 * 1024
"""The most bytes read (and so released) at once: pacing moves in steps this big."""

DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024
"""Bytes one direction of one connection may hold; at least the bandwidth-delay
product of the links the benchmarks use (1000 Mbit/s over 20 ms is 2.5 MB)."""

_UP, _DOWN = 0, 1
_DIRECTIONS = ("up", "down")
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_ACCEPT_PAUSE_S = 0.1
# Chunks read from one socket before the loop writes and serves the others.
_READS_PER_EVENT = 8


def _check_non_negative(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class LinkShape:
    """One direction of a link.

    ``delay_ms`` is the one-way propagation delay; ``jitter_ms`` the most random
    extra delay a chunk gets (uniform, from the shaper's seeded generator);
    ``rate_mbit`` the bandwidth in 10^6 bits per second (None or 0: unlimited);
    ``buffer_bytes`` the most bytes held per connection in this direction,
    queued and in flight together (so throughput is capped near
    ``buffer_bytes / delay`` when it is below the bandwidth-delay product).
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_mbit: float | None = None
    buffer_bytes: int = DEFAULT_BUFFER_BYTES

    def __post_init__(self) -> None:
        _check_non_negative("delay_ms", self.delay_ms)
        _check_non_negative("jitter_ms", self.jitter_ms)
        if self.rate_mbit is not None:
            _check_non_negative("rate_mbit", self.rate_mbit)
        if (
            isinstance(self.buffer_bytes, bool)
            or not isinstance(self.buffer_bytes, int)
            or self.buffer_bytes < 1
        ):
            raise ValueError(
                f"buffer_bytes must be a whole number >= 1, got {self.buffer_bytes!r}"
            )

    @classmethod
    def from_round_trip(
        cls,
        rtt_ms: float,
        rate_mbit: float | None = None,
        *,
        jitter_ms: float = 0.0,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> LinkShape:
        """The shape of each direction of a symmetric link with round trip
        ``rtt_ms`` (half of it each way) and bandwidth ``rate_mbit`` each way;
        ``jitter_ms`` applies to each direction."""
        _check_non_negative("rtt_ms", rtt_ms)
        return cls(
            delay_ms=rtt_ms / 2,
            jitter_ms=jitter_ms,
            rate_mbit=rate_mbit,
            buffer_bytes=buffer_bytes,
        )

    @property
    def seconds_per_byte(self) -> float:
        """How long one byte occupies the link (0 when unlimited)."""
        return 8.0 / (self.rate_mbit * 1e6) if self.rate_mbit else 0.0

    def describe(self) -> str:
        """A short human reading, e.g. ``25 ms, 100 Mbit/s, buffer 4096 KiB``."""
        parts = [f"{self.delay_ms:g} ms"]
        if self.jitter_ms:
            parts.append(f"jitter {self.jitter_ms:g} ms")
        parts.append(f"{self.rate_mbit:g} Mbit/s" if self.rate_mbit else "unlimited")
        parts.append(f"buffer {self.buffer_bytes // 1024} KiB")
        return ", ".join(parts)


def parse_address(text: str, option: str, *, allow_port_zero: bool = False) -> tuple:
    """``host:port`` (an IPv6 host in brackets, ``[::1]:port``) as (host, port);
    a ``ValueError`` naming ``option`` when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"{option}: expected 'host:port', got {text!r}")
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{option}: expected 'host:port', got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(
            f"{option}: write an IPv6 host in brackets, as [::1]:port; got {text!r}"
        )
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{option}: the port of {text!r} is not a number") from None
    lowest = 0 if allow_port_zero else 1
    if not lowest <= port <= 65535:
        raise ValueError(f"{option}: port {port} is not in {lowest}..65535")
    return host, port


def format_address(host: str, port: int) -> str:
    """The ``host:port`` text of an address (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(host: str, port: int, option: str, *, passive: bool) -> tuple:
    flags = socket.AI_PASSIVE if passive else 0
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    except socket.gaierror as error:
        raise ValueError(
            f"{option}: cannot resolve {host!r}: {error.strerror}"
        ) from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


@dataclass(frozen=True)
class ShaperStats:
    """Counters of a shaper since it started. ``bytes_*`` were delivered;
    ``held_*`` are held now (all connections); ``peak_held_*`` is the most one
    connection held at once in that direction."""

    bytes_up: int
    bytes_down: int
    held_up: int
    held_down: int
    peak_held_up: int
    peak_held_down: int
    accepted: int
    refused: int
    open: int
    cpu_seconds: float


class _Direction:
    """One direction of a connection: what was read from ``src`` and is waiting
    for its release time to be written to ``dst``."""

    def __init__(self, index: int, src: socket.socket, dst: socket.socket) -> None:
        self.index = index
        self.src = src
        self.dst = dst
        # (release time, chunk); a chunk of None is the end of the stream.
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.offset = 0  # bytes of the head chunk already written
        self.held = 0
        self.link_free_at = 0.0
        self.last_release = 0.0
        self.eof_read = False
        self.finished = False  # the end of the stream was passed on
        self.blocked = False  # a due chunk waits for room in dst's send buffer


class _Connection:
    def __init__(
        self, number: int, client: socket.socket, target: socket.socket, peer: str
    ) -> None:
        self.number = number
        self.client = client
        self.target = target
        self.peer = peer
        self.connecting = True
        self.directions = (
            _Direction(_UP, client, target),
            _Direction(_DOWN, target, client),
        )


class Shaper:
    """A TCP proxy from ``listen`` to ``target`` that shapes the client→target
    (``up``) and target→client (``down``) directions of every connection.

    ``listen`` with port 0 takes a free port (``address`` tells which); ``down``
    defaults to ``up``. Use as a context manager or with ``start()``/``stop()``.
    """

    def __init__(
        self,
        target: str,
        listen: str = "127.0.0.1:0",
        up: LinkShape | None = None,
        down: LinkShape | None = None,
        *,
        seed: int = 0,
    ) -> None:
        target_host, target_port = parse_address(target, "target")
        self._listen = parse_address(listen, "listen", allow_port_zero=True)
        self._target_text = format_address(target_host, target_port)
        self._target_family, self._target_sockaddr = _resolve(
            target_host, target_port, "target", passive=False
        )
        up = LinkShape() if up is None else up
        self._shapes = _checked_shapes(up, up if down is None else down)
        self._rng = random.Random(seed)
        self._listener: socket.socket | None = None
        self._address = ""
        self._wake_r = -1
        self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        self._connections: dict[int, _Connection] = {}
        self._by_fd: dict[int, _Connection] = {}
        self._next_number = 0
        self._accept_paused_until = 0.0
        self._forwarded = [0, 0]
        self._held = [0, 0]
        self._peak = [0, 0]
        self._accepted = 0
        self._refused = 0
        self._cpu_at_exit = 0.0
        self._cpu_lock = threading.Lock()
        self._running = False

    # ---------------------------------------------------------------- control

    @property
    def address(self) -> str:
        """``host:port`` the shaper listens on (after ``start()``)."""
        if not self._address:
            raise RuntimeError("the shaper has not started")
        return self._address

    @property
    def running(self) -> bool:
        """Whether the forwarding thread runs (False before start, after stop
        and after a failure)."""
        return self._running

    @property
    def target(self) -> str:
        return self._target_text

    @property
    def shapes(self) -> tuple[LinkShape, LinkShape]:
        """The (up, down) shapes in force."""
        return self._shapes

    def set_shapes(self, up: LinkShape, down: LinkShape | None = None) -> None:
        """Changes the shapes while running: bytes read from now on follow them,
        bytes already held keep their release times (order is kept either way)."""
        self._shapes = _checked_shapes(up, up if down is None else down)
        self._wake()

    def start(self) -> Shaper:
        """Binds the listening socket and starts the forwarding thread."""
        if self._thread is not None:
            raise RuntimeError("a shaper starts once")
        host, port = self._listen
        family, sockaddr = _resolve(host, port, "listen", passive=True)
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        bound = listener.getsockname()
        self._listener = listener
        self._address = format_address(bound[0], bound[1])
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(
            target=self._run, name=f"shaper-{bound[1]}", daemon=True
        )
        self._running = True
        self._thread.start()
        up, down = self._shapes
        logger.info(
            "shaper on %s to %s: up %s; down %s",
            self._address,
            self._target_text,
            up.describe(),
            down.describe(),
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Closes the listener and every connection and joins the thread; raises
        ``RuntimeError`` if the thread had failed. Calling it again does nothing."""
        thread = self._thread
        if thread is None or self._stopping:
            return
        self._stopping = True
        self._wake()
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the shaper's thread did not stop within {timeout} s")
        wake_r, wake_w = self._wake_r, self._wake_w
        self._wake_r = self._wake_w = -1
        os.close(wake_r)
        os.close(wake_w)
        if self._failure is not None:
            raise RuntimeError(f"the shaper on {self._address} failed") from (
                self._failure
            )

    def __enter__(self) -> Shaper:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> ShaperStats:
        """A snapshot of the counters (safe from any thread)."""
        return ShaperStats(
            bytes_up=self._forwarded[_UP],
            bytes_down=self._forwarded[_DOWN],
            held_up=self._held[_UP],
            held_down=self._held[_DOWN],
            peak_held_up=self._peak[_UP],
            peak_held_down=self._peak[_DOWN],
            accepted=self._accepted,
            refused=self._refused,
            open=len(self._connections),
            cpu_seconds=self._cpu_seconds(),
        )

    def _cpu_seconds(self) -> float:
        # The lock keeps the thread from ending while its clock is read.
        with self._cpu_lock:
            if self._running and self._thread and self._thread.ident is not None:
                clock = time.pthread_getcpuclockid(self._thread.ident)
                return time.clock_gettime(clock)
            return self._cpu_at_exit

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        # A full pipe wakes the loop all the same.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    # ------------------------------------------------------------------- loop

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # kept for stop() to raise again
            logger.exception("the shaper on %s failed", self._address)
            self._failure = error
        finally:
            with self._cpu_lock:
                self._cpu_at_exit = time.thread_time()
                self._running = False
            for connection in list(self._connections.values()):
                self._close(connection)
            if self._listener is not None:
                self._listener.close()

    def _loop(self) -> None:
        assert self._listener is not None
        listener_fd = self._listener.fileno()
        poller = select.poll()
        masks: dict[int, int] = {}
        while not self._stopping:
            now = time.monotonic()
            wanted = {self._wake_r: _POLLIN}
            deadline = math.inf
            if now >= self._accept_paused_until:
                wanted[listener_fd] = _POLLIN
            else:
                deadline = self._accept_paused_until
            for connection in list(self._connections.values()):
                deadline = min(deadline, self._service(connection, now, wanted))
            for fd in masks.keys() - wanted.keys():
                poller.unregister(fd)
                del masks[fd]
            for fd, mask in wanted.items():
                if masks.get(fd) != mask:
                    poller.register(fd, mask)
                    masks[fd] = mask
            timeout = None
            if deadline < math.inf:
                # poll rounds its milliseconds up: never woken before a release.
                timeout = max(0.0, (deadline - time.monotonic()) * 1000)
            events = poller.poll(timeout)
            now = time.monotonic()
            accept = False
            for fd, event in events:
                if fd == self._wake_r:
                    _drain(fd)
                elif fd == listener_fd:
                    accept = True
                else:
                    connection = self._by_fd.get(fd)
                    if connection is not None:
                        self._on_event(connection, fd, event, now)
            # Accepting last: a socket closed above may hand its number on.
            if accept and not self._stopping:
                self._accept(now)

    def _service(
        self, connection: _Connection, now: float, wanted: dict[int, int]
    ) -> float:
        """Writes what is due, notes which events the connection waits for and
        returns its next release time."""
        if connection.connecting:
            wanted[connection.target.fileno()] = _POLLOUT
            return math.inf
        deadline = math.inf
        shapes = self._shapes
        masks: dict[int, int] = {}
        for direction in connection.directions:
            try:
                self._flush(direction, now)
            except OSError as error:
                self._abort(connection, direction, error)
                return math.inf
            if direction.queue:
                release = direction.queue[0][0]
                if release > now:
                    deadline = min(deadline, release)
                elif direction.blocked:
                    fd = direction.dst.fileno()
                    masks[fd] = masks.get(fd, 0) | _POLLOUT
            if (
                not direction.eof_read
                and direction.held < shapes[direction.index].buffer_bytes
            ):
                fd = direction.src.fileno()
                masks[fd] = masks.get(fd, 0) | _POLLIN
        if all(direction.finished for direction in connection.directions):
            logger.debug(
                "connection %d from %s done", connection.number, connection.peer
            )
            self._close(connection)
            return math.inf
        wanted.update(masks)
        return deadline

    def _on_event(
        self, connection: _Connection, fd: int, event: int, now: float
    ) -> None:
        if connection.connecting:
            code = connection.target.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._refuse(connection, os.strerror(code))
            else:
                connection.connecting = False
            return
        if event & select.POLLERR:
            client = fd == connection.client.fileno()
            sock = connection.client if client else connection.target
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self._abort(connection, None, OSError(code, os.strerror(code)))
            return
        if not event & (_POLLIN | select.POLLHUP):
            return  # writable: written when the loop next services it
        for direction in connection.directions:
            if direction.src.fileno() != fd or direction.eof_read:
                continue
            try:
                self._read(direction, now)
                self._flush(direction, now)
            except OSError as error:
                self._abort(connection, direction, error)
                return

    def _read(self, direction: _Direction, now: float) -> None:
        """Reads what the buffer has room for and gives each chunk its release
        time: after the link has carried it, plus the delay and a jitter."""
        shape = self._shapes[direction.index]
        per_byte = shape.seconds_per_byte
        delay = shape.delay_ms / 1000
        jitter = shape.jitter_ms / 1000
        for _ in range(_READS_PER_EVENT):
            room = shape.buffer_bytes - direction.held
            if room <= 0:
                return
            wanted = min(CHUNK_BYTES, room)
            try:
                chunk = direction.src.recv(wanted)
            except BlockingIOError:
                return
            start = max(now, direction.link_free_at)
            if not chunk:
                direction.eof_read = True
                self._enqueue(direction, None, start + delay)
                return
            direction.link_free_at = start + len(chunk) * per_byte
            extra = self._rng.uniform(0.0, jitter) if jitter else 0.0
            self._enqueue(direction, chunk, direction.link_free_at + delay + extra)
            if len(chunk) < wanted:
                return  # the socket is most likely empty now

    def _enqueue(
        self, direction: _Direction, chunk: bytes | None, release: float
    ) -> None:
        # Never before the chunk ahead of it: jitter delays, it does not reorder.
        release = max(release, direction.last_release)
        direction.last_release = release
        direction.queue.append((release, chunk))
        if chunk:
            index = direction.index
            direction.held += len(chunk)
            self._held[index] += len(chunk)
            if direction.held > self._peak[index]:
                self._peak[index] = direction.held

    def _flush(self, direction: _Direction, now: float) -> None:
        """Writes the due chunks until one is not due or ``dst`` is full."""
        index = direction.index
        queued = direction.queue
        while queued:
            release, chunk = queued[0]
            if release > now:
                break
            if chunk is None:
                queued.popleft()
                try:
                    direction.dst.shutdown(socket.SHUT_WR)
                except OSError as error:
                    if error.errno != errno.ENOTCONN:
                        raise
                direction.finished = True
                break
            try:
                if direction.offset:
                    sent = direction.dst.send(memoryview(chunk)[direction.offset :])
                else:
                    sent = direction.dst.send(chunk)
            except BlockingIOError:
                direction.blocked = True
                return
            direction.held -= sent
            self._held[index] -= sent
            self._forwarded[index] += sent
            direction.offset += sent
            if direction.offset < len(chunk):
                direction.blocked = True
                return
            queued.popleft()
            direction.offset = 0
        direction.blocked = False

    def _accept(self, now: float) -> None:
        assert self._listener is not None
        while True:
            try:
                client, peer = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno == errno.ECONNABORTED:
                    continue
                # Out of descriptors or memory: try again a little later
                # rather than spin on a listener that stays readable.
                logger.warning("shaper on %s cannot accept: %s", self._address, error)
                self._accept_paused_until = now + _ACCEPT_PAUSE_S
                return
            self._accepted += 1
            self._open(client, format_address(peer[0], peer[1]))

    def _open(self, client: socket.socket, peer: str) -> None:
        client.setblocking(False)
        _no_delay(client)
        target = socket.socket(self._target_family, socket.SOCK_STREAM)
        target.setblocking(False)
        _no_delay(target)
        self._next_number += 1
        connection = _Connection(self._next_number, client, target, peer)
        self._connections[connection.number] = connection
        self._by_fd[client.fileno()] = connection
        self._by_fd[target.fileno()] = connection
        code = target.connect_ex(self._target_sockaddr)
        if code == 0:
            connection.connecting = False
        elif code != errno.EINPROGRESS:
            self._refuse(connection, os.strerror(code))
            return
        logger.debug("connection %d from %s", connection.number, peer)

    def _refuse(self, connection: _Connection, reason: str) -> None:
        self._refused += 1
        logger.warning(
            "shaper on %s: closing the connection from %s: target %s refused it (%s)",
            self._address,
            connection.peer,
            self._target_text,
            reason,
        )
        self._close(connection)

    def _abort(
        self, connection: _Connection, direction: _Direction | None, error: OSError
    ) -> None:
        where = "" if direction is None else f" ({_DIRECTIONS[direction.index]})"
        logger.info(
            "shaper on %s: connection %d from %s ended%s: %s",
            self._address,
            connection.number,
            connection.peer,
            where,
            error.strerror or error,
        )
        self._close(connection)

    def _close(self, connection: _Connection) -> None:
        if self._connections.pop(connection.number, None) is None:
            return
        for direction in connection.directions:
            self._held[direction.index] -= direction.held
            direction.held = 0
            direction.queue.clear()
        for sock in (connection.client, connection.target):
            self._by_fd.pop(sock.fileno(), None)
            sock.close()


def _checked_shapes(up: object, down: object) -> tuple[LinkShape, LinkShape]:
    for name, shape in (("up", up), ("down", down)):
        if not isinstance(shape, LinkShape):
            raise TypeError(f"{name} must be a LinkShape, got {type(shape).__name__}")
    return up, down  # type: ignore[return-value]


def _no_delay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


# ------------------------------------------------------------- command line


def _address_option(option: str, *, allow_port_zero: bool = False) -> object:
    def check(text: str) -> str:
        try:
            parse_address(text, option, allow_port_zero=allow_port_zero)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text

    return check


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.shaper",
        description="Forward TCP connections from --listen to --target through an "
        "emulated link (half of --rtt-ms each way, --rate-mbit each way) until "
        "SIGINT or SIGTERM.",
        epilog="'python -m splitrec.bench.shaper measure --help': the fidelity "
        "measurement.",
    )
    parser.add_argument(
        "--listen",
        required=True,
        type=_address_option("--listen", allow_port_zero=True),
        help="host:port to listen on (port 0: a free one)",
    )
    parser.add_argument(
        "--target",
        required=True,
        type=_address_option("--target"),
        help="host:port to forward to",
    )
    parser.add_argument("--rtt-ms", type=_non_negative, default=0.0)
    parser.add_argument(
        "--rate-mbit", type=_non_negative, default=0.0, help="each way; 0: unlimited"
    )
    parser.add_argument(
        "--jitter-ms", type=_non_negative, default=0.0, help="most extra, each way"
    )
    parser.add_argument(
        "--buffer-kb",
        type=_positive_int,
        default=DEFAULT_BUFFER_BYTES // 1024,
        help="KiB held per connection and direction",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the jitter")
    return parser


def serve(argv: Sequence[str]) -> int:
    """Runs a shaper until SIGINT or SIGTERM; prints its address once listening
    and its counters (JSON) when it stops."""
    parser = _serve_parser()
    args = parser.parse_args(argv)
    try:
        shape = LinkShape.from_round_trip(
            args.rtt_ms,
            args.rate_mbit or None,
            jitter_ms=args.jitter_ms,
            buffer_bytes=args.buffer_kb * 1024,
        )
        shaper = Shaper(args.target, args.listen, shape, shape, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))
    stopped = StopFlag()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous = {
        signum: signal.signal(signum, on_signal)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    stop_with_parent(stopped.set)
    try:
        with shaper:
            print(
                f"shaper listening on {shaper.address} -> {shaper.target} "
                f"({shape.describe()} each way)",
                flush=True,
            )
            stopped.wait(0.2, until=lambda: shaper.running)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    stats = dataclasses.asdict(shaper.stats())
    print(f"shaper stopped {json.dumps(stats)}", flush=True)
    return 0


# ------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Setting:
    """A link to measure; ``rtt_ms`` None means no shaper at all (direct)."""

    name: str
    rtt_ms: float | None
    rate_mbit: float | None


SETTINGS = (
    Setting("direct (no shaper)", None, None),
    Setting("loopback, no shaping", 0.0, None),
    Setting("10 ms / 1000 Mbit", 10.0, 1000.0),
    Setting("20 ms / 100 Mbit", 20.0, 100.0),
    Setting("50 ms / 100 Mbit", 50.0, 100.0),
    Setting("50 ms / 20 Mbit", 50.0, 20.0),
)

_MESSAGE = b"m" * 64


class _Handler(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        _no_delay(self.request)


class _EchoHandler(_Handler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _SinkHandler(_Handler):
    def handle(self) -> None:
        count = 0
        first = last = 0.0
        first_size = 0
        while data := self.request.recv(262144):
            last = time.monotonic()
            if not count:
                first, first_size = last, len(data)
            count += len(data)
        self.server.arrivals.put((count, first, first_size, last))  # type: ignore[attr-defined]
        self.request.sendall(count.to_bytes(8, "big"))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LocalServer:
    """A loopback TCP server in threads: ``echo`` sends back what it reads,
    ``sink`` reads to the end, then answers the byte count (8 bytes) and puts
    (bytes, first arrival, first read's size, last arrival) on ``arrivals``."""

    def __init__(self, kind: str) -> None:
        handlers = {"echo": _EchoHandler, "sink": _SinkHandler}
        self._server = _Server(("127.0.0.1", 0), handlers[kind])
        self.arrivals: queue.Queue[tuple[int, float, int, float]] = queue.Queue()
        self._server.arrivals = self.arrivals  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{kind}-server",
            daemon=True,
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return format_address(str(host), int(port))

    def __enter__(self) -> LocalServer:
        self._running = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _connect(address: str) -> socket.socket:
    host, port = parse_address(address, "address")
    sock = socket.create_connection((host, port), timeout=30)
    _no_delay(sock)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts = bytearray()
    while len(parts) < size:
        data = sock.recv(size - len(parts))
        if not data:
            raise ConnectionError(f"closed after {len(parts)} of {size} bytes")
        parts += data
    return bytes(parts)


def measure_round_trips(address: str, count: int, warm_up: int = 3) -> list[float]:
    """Seconds of ``count`` round trips of a 64-byte message to an echo server."""
    times = []
    with _connect(address) as sock:
        for index in range(warm_up + count):
            started = time.perf_counter()
            sock.sendall(_MESSAGE)
            _recv_exactly(sock, len(_MESSAGE))
            if index >= warm_up:
                times.append(time.perf_counter() - started)
    return times


def measure_bulk(address: str, sink: LocalServer, size: int) -> dict:
    """Sends ``size`` bytes to a sink server; its steady rate in Mbit/s (from
    the sink's first to its last arrival) and the sender's wall seconds."""
    data = bytes(size)
    started = time.monotonic()
    with _connect(address) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = int.from_bytes(_recv_exactly(sock, 8), "big")
    seconds = time.monotonic() - started
    count, first, first_size, last = sink.arrivals.get(timeout=30)
    if received != size or count != size:
        raise RuntimeError(f"the sink got {count} of {size} bytes")
    span = last - first
    rate = (count - first_size) * 8 / span / 1e6 if span > 0 else math.inf
    return {"bytes": size, "mbit_s": rate, "seconds": seconds}


class ShaperProcess:
    """``python -m splitrec.bench.shaper`` in a child process, as a party's
    neighbour would run it; ``stop()`` returns the counters it printed."""

    def __init__(self, target: str, setting: Setting) -> None:
        command = [
            sys.executable,
            "-m",
            "splitrec.bench.shaper",
            "--listen",
            "127.0.0.1:0",
            "--target",
            target,
            "--rtt-ms",
            str(setting.rtt_ms or 0),
            "--rate-mbit",
            str(setting.rate_mbit or 0),
        ]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            env=child_environment(dict(os.environ)),  # it ends if this process does
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("shaper listening on "):
            self._process.kill()
            self._process.wait()
            raise RuntimeError(f"the shaper did not start: {line!r}")
        self.address = line.split()[3]

    def stop(self) -> dict:
        self._process.send_signal(signal.SIGTERM)
        out, _ = self._process.communicate(timeout=30)
        for line in out.splitlines():
            if line.startswith("shaper stopped "):
                return json.loads(line.removeprefix("shaper stopped "))
        raise RuntimeError(f"the shaper exited {self._process.returncode} silently")

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _bulk_size(setting: Setting, seconds: float, smallest: int, largest: int) -> int:
    if not setting.rate_mbit:
        return largest
    return int(min(largest, max(smallest, setting.rate_mbit * 1e6 / 8 * seconds)))


def measure_setting(
    setting: Setting,
    *,
    pings: int = 40,
    bulk_seconds: float = 1.0,
    smallest: int = 4 * 1024 * 1024,
    largest: int = 32 * 1024 * 1024,
) -> dict:
    """One row: round trips, bulk throughput and the shaper's CPU seconds
    (the forwarding thread's, in its own process) for each phase."""
    row: dict = dataclasses.asdict(setting)
    size = _bulk_size(setting, bulk_seconds, smallest, largest)
    with LocalServer("echo") as echo, LocalServer("sink") as sink:
        for phase, server in (("rtt", echo), ("bulk", sink)):
            shaper = None
            address = server.address
            if setting.rtt_ms is not None:
                shaper = ShaperProcess(server.address, setting)
                address = shaper.address
            try:
                if phase == "rtt":
                    times = sorted(measure_round_trips(address, pings))
                    row["rtt_median_ms"] = statistics.median(times) * 1000
                    row["rtt_p95_ms"] = times[math.ceil(0.95 * len(times)) - 1] * 1000
                else:
                    row.update(measure_bulk(address, sink, size))
                cpu = shaper.stop()["cpu_seconds"] if shaper else 0.0
                row[f"{phase}_cpu_seconds"] = cpu
            finally:
                if shaper is not None:
                    shaper.kill()
    row["bulk_cpu_share"] = row["bulk_cpu_seconds"] / row["seconds"]
    return row


def format_rows(rows: Sequence[dict]) -> str:
    """The measurement as a Markdown table."""
    lines = [
        "| link (round trip / rate) | RTT median ms | RTT p95 ms | Mbit/s "
        "| shaper CPU in bulk | shaper CPU s/GB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['rtt_median_ms']:.2f} | {row['rtt_p95_ms']:.2f} "
            f"| {row['mbit_s']:.1f} | {row['bulk_cpu_share']:.0%} of a core "
            f"| {row['bulk_cpu_seconds'] / row['bytes'] * 1e9:.2f} |"
        )
    return "\n".join(lines)


def measure(
    settings: Sequence[Setting] = SETTINGS, *, pings: int = 40, **sizes: float
) -> dict:
    """Every setting measured in turn, with the machine it ran on."""
    rows = [measure_setting(setting, pings=pings, **sizes) for setting in settings]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "pings": pings,
        "rows": rows,
    }


def measure_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.shaper measure",
        description="Round trips and bulk throughput through the shaper for a few "
        "links, against loopback echo and sink servers; prints a table, writes JSON.",
    )
    parser.add_argument(
        "--json", type=Path, default=Path("runs/bench/shaper.json"), help="output"
    )
    parser.add_argument("--pings", type=_positive_int, default=40)
    args = parser.parse_args(argv)
    result = measure(pings=args.pings)
    print(format_rows(result["rows"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``measure [...]`` measures fidelity; anything else runs a shaper."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if arguments[:1] == ["measure"]:
        return measure_main(arguments[1:])
    return serve(arguments)


if __name__ == "__main__":
    sys.exit(main())
