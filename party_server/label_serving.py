"""The label party's part of online scoring: a request's rows, each one key
per party, scored by its own base and the fuse over the feature parties'
outputs of their keys.

For each feature party the label party takes what its cache holds and asks the
party (``Peer.Embed``) for the rest, all parties at once. A key a party does
not hold makes that row's problem; the other rows are scored. The feature
parties answer only for the version the label party names, so a response's
rows are all scored by one version.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

import grpc
import numpy as np

from common import serde
from common.config import PartyConfig
from common.errors import (
    DataError,
    InvalidMessageError,
    PeerError,
    RequestTooLargeError,
)
from common.online import Embedded, PartView, Scored, ServingView
from common.serving_config import MAX_KEY_LENGTH
from party_server.output_cache import OutputCache
from party_server.part_serving import PartServing, Served
from party_server.served_model import ServedModel
from splitrec.v1 import peer_pb2, peer_pb2_grpc

logger = logging.getLogger(__name__)

# How long the label party waits for a feature party when the request has no
# deadline of its own.
DEFAULT_TIMEOUT = 10.0
# A party that answers so may be able to later: the switch may be tried again.
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class LabelServing(PartServing):
    def __init__(
        self,
        config: PartyConfig,
        channel: Callable[[str], grpc.Channel],
        on_ready: Callable[[bool], None] = lambda ready: None,
    ) -> None:
        super().__init__(config, on_ready)
        self._channel = channel
        self._peers = {p.name for p in config.peers}
        self.cache = OutputCache(
            self.settings.cache_entries, self.settings.cache_seconds
        )
        # Each feature party's model and table digests as its last answer said.
        self.seen: dict[str, tuple[str, str]] = {}
        self._switch_lock = threading.Lock()

    def check_model(self, model: ServedModel) -> None:
        if not model.label:
            raise DataError(
                f"{model.folder} is a feature party's part; party {self.party} "
                "holds the labels"
            )
        missing = [p for p, _ in model.peers if p not in self._peers]
        if missing:
            raise DataError(
                f"{model.folder} fuses the outputs of {missing}, which are not "
                f"peers of {self.party}; add them to its peers"
            )

    def switch(self, version: str, timeout: float) -> tuple[str, dict[str, str]]:
        """Makes ``version`` the one every request uses once this party and
        every feature party hold it; when one cannot, nothing changes
        (``PeerError`` or ``DataError`` naming it). Returns the previous
        version and each party's model digest of the new one."""
        with self._switch_lock:
            previous = self.version
            served = self.hold(version)
            request = peer_pb2.PrepareServingRequest(
                job_id=self.settings.job, version=version, party=self.party
            )
            calls = {
                party: self._stub(party).PrepareServing.future(request, timeout=timeout)
                for party, _ in served.model.peers
            }
            digests, failures = {self.party: served.model.digest}, {}
            for party, call in calls.items():
                try:
                    digests[party] = call.result().model_digest
                except grpc.RpcError as exc:
                    failures[party] = exc
            if failures:
                message = (
                    f"version {version!r} cannot be served by every party, so "
                    f"{previous!r} stays: "
                    + "; ".join(
                        f"{p}: {e.code().name}: {e.details()}"
                        for p, e in failures.items()
                    )
                )
                transient = {
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                }
                if any(e.code() in transient for e in failures.values()):
                    raise PeerError(message)
                raise DataError(message)
            self.version = version
            self.swapped(self._served.get(previous), served)
        logger.info("serving switched from version %s to %s", previous, version)
        return previous, digests

    def swapped(self, old: Served | None, new: Served) -> None:
        if old is None or old.model.version != new.model.version:
            self.cache.drop()

    def parties(self, served: Served) -> list[str]:
        """The parties whose keys a request gives, in the model's order."""
        own = [self.party] if served.model.inputs else []
        return [p for p, _ in served.model.peers] + own

    def _rows(self, served: Served, request: dict[str, list[str]]) -> int:
        expected = self.parties(served)
        unknown = sorted(set(request) - set(expected))
        missing = [p for p in expected if p not in request]
        if unknown or missing:
            raise InvalidMessageError(
                f"a request gives keys of the parties {expected}"
                + (f"; {unknown} are not among them" if unknown else "")
                + (f"; keys of {missing} are missing" if missing else "")
            )
        rows = max(len(keys) for keys in request.values())
        for party, keys in request.items():
            if len(keys) not in (1, rows):
                raise InvalidMessageError(
                    f"{party} gives {len(keys)} keys; give one (for every row) or "
                    f"one per row ({rows})"
                )
            for position, key in enumerate(keys):
                if not key or len(key) > MAX_KEY_LENGTH:
                    raise InvalidMessageError(
                        f"{party}'s key at position {position} is empty or longer "
                        f"than {MAX_KEY_LENGTH} characters"
                    )
        if rows > self.settings.max_rows:
            raise RequestTooLargeError(
                f"{rows} rows in one request; this service scores at most "
                f"{self.settings.max_rows} (serving.max_rows)"
            )
        if rows == 0:
            raise InvalidMessageError("a request needs at least one key per party")
        return rows

    def _embed(
        self, served: Served, party: str, keys: list[str], timeout: float
    ) -> concurrent.futures.Future:
        request = serde.embed_request_to_proto(
            served.model.job, served.model.version, self.party, keys
        )
        return self._stub(party).Embed.future(request, timeout=timeout)

    def _stub(self, party: str) -> peer_pb2_grpc.PeerStub:
        return peer_pb2_grpc.PeerStub(self._channel(party))

    def _received(self, party: str, keys: list[str], future: object) -> Embedded:
        try:
            reply = serde.embed_reply_from_proto(future.result(), len(keys))
        except grpc.RpcError as exc:
            raise PeerError(
                f"party {party} did not answer Embed: {exc.code().name}: "
                f"{exc.details()}",
                code=exc.code().name,
                rpc="Embed",
            ) from None
        digests = (reply.model_digest, reply.table_digest)
        if self.seen.get(party, digests) != digests:
            self.cache.drop(party)
        self.seen[party] = digests
        return reply

    def score(self, request: dict[str, list[str]], timeout: float | None) -> Scored:
        served = self.current()
        model = served.model
        rows = self._rows(served, request)
        problems = [""] * rows

        def spread(keys: list[str]) -> list[str]:
            return keys * rows if len(keys) == 1 else keys

        # Outputs wanted from each feature party: its distinct keys.
        wanted = {p: list(dict.fromkeys(request[p])) for p, _ in model.peers}
        found = {
            p: self.cache.get(p, model.version, keys) for p, keys in wanted.items()
        }
        cached = sum(len(v) for v in found.values())
        missing = {p: [k for k in wanted[p] if k not in found[p]] for p in wanted}
        wait = DEFAULT_TIMEOUT if timeout is None else max(timeout, 0.001)
        calls = {
            p: self._embed(served, p, keys, wait) for p, keys in missing.items() if keys
        }
        unknown: dict[str, set[str]] = {p: set() for p in wanted}
        for party, call in calls.items():
            keys = missing[party]
            reply = self._received(party, keys, call)
            gone = {keys[i] for i in reply.unknown}
            known = [k for k in keys if k not in gone]
            self.cache.put(party, model.version, known, reply.outputs)
            found[party].update(zip(known, reply.outputs, strict=True))
            unknown[party] = gone
        hidden = {}
        for party, width in model.peers:
            keys = spread(request[party])
            zero = np.zeros(width, np.float32)
            for row, key in enumerate(keys):
                if key in unknown[party] and not problems[row]:
                    problems[row] = f"party {party} holds no entity {key!r}"
            hidden[party] = np.stack([found[party].get(k, zero) for k in keys])
        columns = {}
        if model.inputs:
            keys = spread(request[self.party])
            positions = served.table.positions(keys)
            for row in np.flatnonzero(positions < 0):
                if not problems[row]:
                    problems[row] = (
                        f"party {self.party} holds no {served.table.key} {keys[row]!r}"
                    )
            columns = {
                c: values[np.maximum(positions, 0)]
                for c, values in served.table.columns.items()
            }
        valid = np.array([not p for p in problems])
        scores = np.full((rows, max(len(model.tasks), 1)), np.nan, np.float32)
        if valid.any():
            scores[valid] = model.scores(
                {c: v[valid] for c, v in columns.items()},
                {p: h[valid] for p, h in hidden.items()},
            )
        return Scored(
            model.version,
            model.tasks,
            scores,
            problems,
            cached,
            sum(len(k) for k in missing.values()),
        )

    def view(self) -> ServingView:
        """What ``GetServingStatus`` reports."""
        served = self._served.get(self.version)
        settings = self.settings
        if served is None:
            return ServingView(False, self.problem, settings.job, settings.version)
        model, table = served.model, served.table
        own = PartView(self.party, model.digest, table.key, len(table), table.digest)
        peers = []
        for party, _ in model.peers:
            digest, table_digest = self.seen.get(party, ("", ""))
            peers.append(PartView(party, digest, table_digest=table_digest))
        return ServingView(
            True,
            "",
            model.job,
            model.version,
            model.tasks,
            (*peers, own),
            len(self.cache),
        )
