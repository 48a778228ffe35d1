"""The TCP shaper: delay, rate, order, bounded buffer, connections and control.

Every test talks to loopback servers of its own. Time is read only where the
shaper guarantees a bound by construction (a round trip is never shorter than
the delays, a transfer never faster than the rate); the bounds on the other
side are wide enough for a loaded machine.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from splitrec.bench.shaper import (
    CHUNK_BYTES,
    LinkShape,
    LocalServer,
    Setting,
    Shaper,
    format_rows,
    main,
    measure,
    measure_round_trips,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def echo() -> Iterator[LocalServer]:
    with LocalServer("echo") as server:
        yield server


def _connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket, size: int) -> bytes:
    parts = bytearray()
    while len(parts) < size:
        data = sock.recv(min(1 << 20, size - len(parts)))
        if not data:
            break
        parts += data
    return bytes(parts)


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end closed ``sock`` (an end of stream or a reset)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def _wait_for(condition: Callable[[], bool]) -> None:
    """Waits until ``condition()`` holds; the test's timeout catches a hang."""
    while not condition():
        time.sleep(0.005)


def _shaper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("shaper-")]


def test_a_round_trip_takes_the_two_delays(echo: LocalServer) -> None:
    shape = LinkShape.from_round_trip(40)
    assert shape.delay_ms == 20

    with Shaper(echo.address, up=shape) as shaper:
        times = measure_round_trips(shaper.address, 10)

    assert all(seconds >= 0.040 for seconds in times)
    assert min(times) < 0.040 + 0.060


def test_a_bulk_transfer_runs_at_the_rate(echo: LocalServer) -> None:
    size = 2_000_000
    data = os.urandom(size)
    up = LinkShape(rate_mbit=20)

    shaper = Shaper(echo.address, up=up, down=LinkShape())
    with shaper, _connect(shaper.address) as sock:
        started = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(data,))
        sender.start()
        received = _read_all(sock, size)
        seconds = time.monotonic() - started
        sender.join()

    assert received == data
    mbit_s = size * 8 / seconds / 1e6
    assert 0.5 * 20 <= mbit_s <= 1.2 * 20


def test_jitter_delays_chunks_but_never_reorders_bytes(echo: LocalServer) -> None:
    size = 1_000_000
    data = random.Random(7).randbytes(size)
    shape = LinkShape(delay_ms=2, jitter_ms=15)

    def send_in_pieces(sock: socket.socket) -> None:
        pieces = random.Random(8)
        sent = 0
        while sent < size:
            step = pieces.randint(1, 3 * CHUNK_BYTES)
            sock.sendall(data[sent : sent + step])
            sent += step

    with Shaper(echo.address, up=shape, seed=3) as shaper:
        with _connect(shaper.address) as sock:
            sender = threading.Thread(target=send_in_pieces, args=(sock,))
            sender.start()
            received = _read_all(sock, size)
            sender.join()
        _wait_for(lambda: shaper.stats().bytes_down == size)
        stats = shaper.stats()

    assert received == data
    assert stats.bytes_up == stats.bytes_down == size


def test_a_full_buffer_blocks_the_sender_instead_of_growing() -> None:
    bound = 256 * 1024
    # More than the kernel buffers on the way can take (the shaper's sockets:
    # at most 32 MiB to receive and 4 MiB to send here; the two ends' are set
    # small), so the sender must block.
    data = os.urandom(1 << 20) * 40
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        port = listener.getsockname()[1]
        shaper = Shaper(f"127.0.0.1:{port}", up=LinkShape(buffer_bytes=bound))
        with shaper, _connect(shaper.address) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            receiver, _ = listener.accept()
            sender = threading.Thread(target=client.sendall, args=(data,))
            sender.start()
            with receiver:
                _wait_for(lambda: shaper.stats().held_up >= bound)
                time.sleep(0.2)
                assert sender.is_alive()
                assert shaper.stats().held_up <= bound

                slow = bytearray()
                for _ in range(20):
                    slow += receiver.recv(64 * 1024)
                    time.sleep(0.005)
                    assert shaper.stats().held_up <= bound
                received = bytes(slow) + _read_all(receiver, len(data) - len(slow))
            sender.join()
            stats = shaper.stats()

    assert received == data
    assert bound <= stats.peak_held_up <= bound + CHUNK_BYTES


def test_several_connections_at_once(echo: LocalServer) -> None:
    def exchange(number: int) -> bool:
        data = bytes([number]) * 200_000
        with _connect(shaper.address) as sock:
            sender = threading.Thread(target=sock.sendall, args=(data,))
            sender.start()
            received = _read_all(sock, len(data))
            sender.join()
        return received == data

    with Shaper(echo.address, up=LinkShape(delay_ms=5, rate_mbit=200)) as shaper:
        with futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(exchange, range(6)))
        _wait_for(lambda: shaper.stats().open == 0)
        stats = shaper.stats()

    assert results == [True] * 6
    assert stats.accepted == 6
    assert stats.held_up == stats.held_down == 0


def test_a_half_close_reaches_the_target_after_the_data() -> None:
    data = os.urandom(300_000)

    def serve_once(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            got = _read_all(conn, len(data) + 1)  # ends at the client's EOF
            conn.sendall(f"got {len(got)}".encode())

    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=serve_once, args=(listener,))
        server.start()
        port = listener.getsockname()[1]
        with Shaper(f"127.0.0.1:{port}", up=LinkShape(delay_ms=10)) as shaper:
            with _connect(shaper.address) as client:
                client.sendall(data)
                client.shutdown(socket.SHUT_WR)
                reply = _read_all(client, 1000)
            server.join()
            _wait_for(lambda: shaper.stats().open == 0)

    assert reply == f"got {len(data)}".encode()


def test_stop_closes_live_connections_and_leaves_no_thread(echo: LocalServer) -> None:
    shaper = Shaper(echo.address, up=LinkShape(delay_ms=30)).start()
    clients = [_connect(shaper.address) for _ in range(3)]
    try:
        clients[0].sendall(b"still in flight")
        _wait_for(lambda: shaper.stats().open == 3)
        shaper.stop()
        assert all(_closed_by_peer(client) for client in clients)
    finally:
        for client in clients:
            client.close()

    assert _shaper_threads() == []
    assert shaper.stats().open == 0
    shaper.stop()  # a second stop does nothing


def test_shapes_change_while_running(echo: LocalServer) -> None:
    fast = LinkShape()
    slow = LinkShape.from_round_trip(60)

    with Shaper(echo.address, up=fast) as shaper, _connect(shaper.address) as sock:

        def round_trips(count: int) -> list[float]:
            times = []
            for _ in range(count):
                started = time.monotonic()
                sock.sendall(b"ping")
                assert _read_all(sock, 4) == b"ping"
                times.append(time.monotonic() - started)
            return times

        before = round_trips(5)
        shaper.set_shapes(slow)
        assert shaper.shapes == (slow, slow)
        after = round_trips(5)
        shaper.set_shapes(fast, fast)
        again = round_trips(5)

    assert min(before) < 0.060
    assert all(seconds >= 0.060 for seconds in after)
    assert min(again) < 0.060


def test_a_grpc_call_goes_through() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Shaper(f"127.0.0.1:{port}", up=LinkShape.from_round_trip(20)) as shaper:
            with grpc.insecure_channel(shaper.address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=20)
            stats = shaper.stats()
    finally:
        server.stop(None)

    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert stats.bytes_up > 0 and stats.bytes_down > 0


def test_a_refusing_target_closes_the_client(caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="splitrec.bench.shaper")

    with Shaper(f"127.0.0.1:{port}") as shaper:
        with _connect(shaper.address) as client:
            assert _closed_by_peer(client)
        _wait_for(lambda: shaper.stats().refused == 1)

    assert f"target 127.0.0.1:{port} refused" in caplog.text


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"delay_ms": -1}, "delay_ms"),
        ({"jitter_ms": float("nan")}, "jitter_ms"),
        ({"rate_mbit": -5}, "rate_mbit"),
        ({"buffer_bytes": 0}, "buffer_bytes"),
        ({"buffer_bytes": 1.5}, "buffer_bytes"),
    ],
)
def test_bad_shapes_are_refused(values: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LinkShape(**values)


@pytest.mark.parametrize(
    ("listen", "target", "name"),
    [
        ("127.0.0.1:0", "localhost", "target"),
        ("127.0.0.1:0", "127.0.0.1:0", "target"),
        ("127.0.0.1:0", "127.0.0.1:70000", "target"),
        ("127.0.0.1:x", "127.0.0.1:1", "listen"),
        ("::1:0", "127.0.0.1:1", "listen"),
    ],
)
def test_bad_addresses_are_refused(listen: str, target: str, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Shaper(target, listen)


def test_bad_shapes_and_options_are_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="rtt_ms"):
        LinkShape.from_round_trip(-2)
    shaper = Shaper("127.0.0.1:1")
    with pytest.raises(TypeError, match="up"):
        shaper.set_shapes(40)  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as stopped:
        main(["--listen", "127.0.0.1:0", "--target", "127.0.0.1:1", "--rtt-ms", "-1"])
    assert stopped.value.code == 2
    assert "--rtt-ms" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--listen", "nowhere", "--target", "127.0.0.1:1"])
    assert "--listen" in capsys.readouterr().err


def test_the_command_runs_until_sigterm(echo: LocalServer) -> None:
    command = [sys.executable, "-m", "splitrec.bench.shaper", "--listen"]
    command += ["127.0.0.1:0", "--target", echo.address, "--rtt-ms", "10"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("shaper listening on 127.0.0.1:")
        times = measure_round_trips(line.split()[3], 3)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert all(seconds >= 0.010 for seconds in times)
    assert process.returncode == 0
    assert out.startswith("shaper stopped {")


def test_the_measurement_reports_each_setting() -> None:
    settings = [Setting("direct", None, None), Setting("5 ms / 50 Mbit", 5, 50)]

    result = measure(settings, pings=3, smallest=100_000, largest=200_000)

    rows = result["rows"]
    assert [row["name"] for row in rows] == ["direct", "5 ms / 50 Mbit"]
    assert rows[1]["rtt_median_ms"] >= 5
    assert rows[1]["bytes"] == 200_000
    assert rows[1]["bulk_cpu_seconds"] > 0
    assert "| 5 ms / 50 Mbit |" in format_rows(rows)


def test_a_failure_in_the_thread_is_logged_and_raised_by_stop(
    echo: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Shaper, "_read", broken)
    shaper = Shaper(echo.address).start()
    with _connect(shaper.address) as client:
        client.sendall(b"ping")
        _wait_for(lambda: not shaper.running)
        assert _closed_by_peer(client)

    with pytest.raises(RuntimeError, match="failed") as raised:
        shaper.stop()
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    assert "failed" in caplog.text and "a bug" in caplog.text
    assert _shaper_threads() == []
