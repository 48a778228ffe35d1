"""A feature party's stream to the label party for one pass."""

from __future__ import annotations

import logging
import queue
import threading

import grpc

from common.errors import PeerError
from common.traffic import TrafficCounter
from splitrec.v1 import peer_pb2, peer_pb2_grpc

logger = logging.getLogger(__name__)

_CLOSE = object()


class PeerStream:
    """Sends ``PeerMessage``s on one Exchange call and reads the replies.

    Replies are read by a background thread so that ``receive`` can time out.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        peer: str,
        hello: peer_pb2.Hello,
        traffic: TrafficCounter,
    ) -> None:
        self._peer = peer
        self._traffic = traffic
        self._requests: queue.Queue[object] = queue.Queue()
        self.send(peer_pb2.PeerMessage(hello=hello))
        self._replies: queue.Queue[object] = queue.Queue()
        self._call = peer_pb2_grpc.PeerStub(channel).Exchange(
            iter(self._next_request, _CLOSE)
        )
        self._reader = threading.Thread(
            target=self._read, name=f"peer-reader-{peer}", daemon=True
        )
        self._reader.start()

    def _next_request(self) -> object:
        return self._requests.get()

    def _read(self) -> None:
        try:
            for reply in self._call:
                self._traffic.received(reply)
                self._replies.put(reply)
            self._replies.put(_CLOSE)
        except grpc.RpcError as exc:
            self._replies.put(exc)

    def send(self, message: peer_pb2.PeerMessage) -> None:
        self._traffic.sent(message)
        self._requests.put(message)

    def receive(self, timeout: float) -> peer_pb2.PeerMessage:
        """The next reply; raises ``PeerError`` on timeout, error or early end."""
        try:
            item = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.cancel()
            raise PeerError(
                f"no reply from {self._peer} within {timeout:.0f} s"
            ) from None
        if isinstance(item, grpc.RpcError):
            raise PeerError(
                f"{self._peer} ended the stream: {item.code().name}: {item.details()}"
            )
        if item is _CLOSE:
            raise PeerError(f"{self._peer} closed the stream before replying")
        return item

    def close(self, timeout: float) -> None:
        """Ends the sending side and waits for the peer to end its side."""
        self._requests.put(_CLOSE)
        self._reader.join(timeout)
        if self._reader.is_alive():
            self.cancel()
            raise PeerError(
                f"{self._peer} did not end the stream within {timeout:.0f} s"
            )
        while not self._replies.empty():
            item = self._replies.get()
            if isinstance(item, grpc.RpcError):
                raise PeerError(f"{self._peer}: {item.code().name}: {item.details()}")

    def cancel(self) -> None:
        self._requests.put(_CLOSE)
        self._call.cancel()
