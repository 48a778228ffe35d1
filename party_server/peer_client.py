"""A feature party's stream to the label party for one pass."""

from __future__ import annotations

import logging
import queue
import threading
import time

import grpc

from splitrec.common.errors import PeerError
from splitrec.common.traffic import TrafficCounter
from splitrec.v1 import peer_pb2, peer_pb2_grpc
from splitrec.wire.rpc import rpc_failure

logger = logging.getLogger(__name__)

_CLOSE = object()
_WATCH_SECONDS = 0.5


class PeerStream:
    """Sends ``PeerMessage``s on one Exchange call and reads the replies.

    Replies are read on the caller's thread (no hand-off on the step's critical
    path); a watchdog cancels the call when a reply is awaited for longer than
    the timeout.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        peer: str,
        hello: peer_pb2.Hello,
        traffic: TrafficCounter,
        timeout: float,
    ) -> None:
        self._peer = peer
        # This stream's own messages (also added to the party's ``traffic``).
        self.traffic = TrafficCounter(traffic)
        self._traffic = self.traffic
        self._timeout = timeout
        self._requests: queue.Queue[object] = queue.Queue()
        self.send(peer_pb2.PeerMessage(hello=hello))
        self._call = peer_pb2_grpc.PeerStub(channel).Exchange(
            iter(self._requests.get, _CLOSE)
        )
        self._waiting_since: float | None = None
        self._timed_out = False
        self._done = threading.Event()
        threading.Thread(
            target=self._watch, name=f"peer-watch-{peer}", daemon=True
        ).start()

    def _watch(self) -> None:
        while not self._done.wait(_WATCH_SECONDS):
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self._timeout:
                self._timed_out = True
                self._call.cancel()
                return

    def send(self, message: peer_pb2.PeerMessage) -> None:
        self._traffic.sent(message)
        self._requests.put(message)

    def _next(self) -> peer_pb2.PeerMessage | None:
        self._waiting_since = time.monotonic()
        try:
            reply = next(self._call, None)
        except grpc.RpcError as exc:
            self._done.set()
            if self._timed_out:
                raise PeerError(
                    f"no reply from {self._peer} within {self._timeout:g} s"
                ) from None
            raise rpc_failure(
                f"{self._peer} ended the stream", exc, "Exchange"
            ) from None
        finally:
            self._waiting_since = None
        if reply is not None:
            self._traffic.received(reply)
        return reply

    def receive(self) -> peer_pb2.PeerMessage:
        """The next reply; raises ``PeerError`` on timeout, error or early end."""
        reply = self._next()
        if reply is None:
            self._done.set()
            raise PeerError(f"{self._peer} closed the stream before replying")
        return reply

    def close(self) -> None:
        """Ends the sending side and waits for the peer to end its side."""
        self._requests.put(_CLOSE)
        try:
            while self._next() is not None:
                pass
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._done.set()
        self._requests.put(_CLOSE)
        self._call.cancel()
