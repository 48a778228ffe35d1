"""The label party's part of online scoring: a request's rows, each one key
per party, scored by its own base and the fuse over the feature parties'
outputs of their keys.

For each feature party the label party takes what its cache holds and asks the
party (``Peer.Embed``) for the rest, all parties at once. A key a party does
not hold makes that row's problem; the other rows are scored. The feature
parties answer only for the version the label party names, so a response's
rows are all scored by one version. Each answer names the export its part came
from; one that names another export than the label party's own part is
refused (the request fails, the party's part is listed as kept out).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable

import grpc
import numpy as np

from splitrec.common.errors import (
    DataError,
    InvalidMessageError,
    ModelIntegrityError,
    PeerError,
    RequestTooLargeError,
)
from splitrec.common.online import (
    Embedded,
    ExportIdentity,
    PartView,
    Scored,
    ServingView,
)
from splitrec.config.party import PartyConfig
from splitrec.config.serving import MAX_KEY_LENGTH
from splitrec.party_server.entity_table import EntityTable
from splitrec.party_server.output_cache import OutputCache
from splitrec.party_server.part_serving import PartServing, Served, encoding
from splitrec.party_server.served_model import ServedModel, chunks
from splitrec.v1 import peer_pb2, peer_pb2_grpc
from splitrec.wire import serde

logger = logging.getLogger(__name__)

# How long the label party waits for a feature party's outputs (less when the
# request's deadline is nearer): a party that is down fails the requests that
# need it after this long, and one that just restarted is waited for.
EMBED_TIMEOUT = 2.0
# How soon pushed outputs are asked for again when their party was unreachable.
PUSH_RETRY_SECONDS = 2.0
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
        self._stubs: dict[str, peer_pb2_grpc.PeerStub] = {}
        self._peers = {p.name for p in config.peers}
        self.cache = OutputCache(
            self.settings.cache_entries, self.settings.cache_seconds
        )
        # Each feature party's model and table digests as its last answer said.
        self.seen: dict[str, tuple[str, str]] = {}
        self._switch_lock = threading.Lock()
        # Pushed outputs: wanted now; parties that refused to push them.
        self._push_wanted = threading.Event()
        self._refused_push: set[str] = set()
        self._pusher: threading.Thread | None = None

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

    def check_part(
        self, model: ServedModel, party: str, theirs: ExportIdentity
    ) -> None:
        """Refuses a feature party's part that names another export than this
        party's part of the version (``ModelIntegrityError``, noted in the
        status); a matching one clears an earlier refusal."""
        differs = model.export.differs(theirs)
        if not differs:
            self.let_in("part", party)
            return
        own = model.export
        reason = (
            f"party {party}'s part of model version {model.version!r} of job "
            f"{model.job!r} (its model.json) names {differs}; party {self.party}'s "
            f"part comes from export {own.export_id} of epoch {own.epoch}: the "
            "parts of a version must come from one export; export the version "
            "again at every party"
        )
        self.keep_out("part", party, reason)
        raise ModelIntegrityError(reason)

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
            transient = False
            digests, failures = {self.party: served.model.digest}, {}
            for party, call in calls.items():
                try:
                    reply = call.result()
                except grpc.RpcError as exc:
                    failures[party] = f"{exc.code().name}: {exc.details()}"
                    transient = transient or exc.code() in _TRANSIENT
                    continue
                try:
                    self.check_part(
                        served.model,
                        party,
                        serde.export_identity_from_proto(reply.export),
                    )
                except ModelIntegrityError as exc:
                    failures[party] = f"FAILED_PRECONDITION: {exc}"
                    continue
                digests[party] = reply.model_digest
            if failures:
                message = (
                    f"version {version!r} cannot be served by every party, so "
                    f"{previous!r} stays: "
                    + "; ".join(f"{p}: {f}" for p, f in failures.items())
                )
                self.keep_out("version", version, message)
                if transient:
                    raise PeerError(message)
                raise DataError(message)
            self.let_in("version", version)
            self.version = version
            self.swapped(self._served.get(previous), served)
        logger.info("serving switched from version %s to %s", previous, version)
        return previous, digests

    def _prepare(self, model: ServedModel, table: EntityTable) -> Served:
        """Checks that the model can encode every row of the table (with zero
        feature outputs), so that a bad cell refuses the table, not a request."""
        for columns in chunks(table.columns):
            rows = len(next(iter(columns.values())))
            zeros = {p: np.zeros((rows, w), np.float32) for p, w in model.peers}
            with encoding(table):
                model.scores(columns, zeros)
        return Served(model, table)

    def swapped(self, old: Served | None, new: Served) -> None:
        if old is None or old.model.version != new.model.version:
            self.cache.drop()
            self._push_wanted.set()

    def start(self) -> None:
        super().start()
        if self.cache.capacity:
            self._pusher = threading.Thread(
                target=self._push_loop, name="serving-push", daemon=True
            )
            self._pusher.start()

    def close(self) -> None:
        super().close()
        self._push_wanted.set()
        if self._pusher is not None:
            self._pusher.join(timeout=5)

    def _push_loop(self) -> None:
        """Fetches the outputs of every entity of the feature parties that
        push them: after a new version or table, and before cached outputs
        expire."""
        pause = self.settings.cache_seconds / 2
        while not self._stop.is_set():
            self._push_wanted.wait(pause)
            self._push_wanted.clear()
            if self._stop.is_set():
                return
            served = self._served.get(self.version)
            if served is None:
                continue
            failed = [not self._fetch_pushed(served, p) for p, _ in served.model.peers]
            # A party that could not be reached is asked again soon.
            pause = self.settings.cache_seconds / 2
            if any(failed):
                pause = min(pause, PUSH_RETRY_SECONDS)

    def _fetch_pushed(self, served: Served, party: str) -> bool:
        """Fetches ``party``'s pushed outputs; False when it could not be
        reached (a party that does not push counts as reached)."""
        request = peer_pb2.PushRequest(
            job_id=served.model.job, version=served.model.version, party=self.party
        )
        count = 0
        try:
            for message in self._stub(party).PushOutputs(request, timeout=600):
                chunk = serde.pushed_from_proto(message)
                self.check_part(served.model, party, chunk.export)
                self._saw(party, (chunk.model_digest, chunk.table_digest), False)
                self.cache.put(party, served.model.version, chunk.keys, chunk.outputs)
                count += len(chunk.keys)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                logger.warning(
                    "outputs pushed by party %s: %s: %s",
                    party,
                    exc.code().name,
                    exc.details(),
                )
                return False
            if party not in self._refused_push:  # said once, asked again later
                self._refused_push.add(party)
                logger.info("party %s: %s", party, exc.details())
            return True
        except (InvalidMessageError, ModelIntegrityError) as exc:
            logger.warning("outputs pushed by party %s: %s", party, exc)
            return False
        self._refused_push.discard(party)
        if count > self.cache.capacity:
            logger.warning(
                "party %s pushed %d outputs; the cache keeps %d (cache.entries)",
                party,
                count,
                self.cache.capacity,
            )
        logger.info("party %s pushed the outputs of %d entities", party, count)
        return True

    def _saw(self, party: str, digests: tuple[str, str], push: bool = True) -> None:
        """Notes a party's model and table digests; a change drops its cached
        outputs (and, with ``push``, fetches them again if it pushes)."""
        if self.seen.get(party, digests) != digests:
            self.cache.drop(party)
            if push:
                self._push_wanted.set()
        self.seen[party] = digests

    def _parties(self, served: Served) -> list[str]:
        """The parties whose keys a request gives, in the model's order."""
        own = [self.party] if served.model.inputs else []
        return [p for p, _ in served.model.peers] + own

    def _rows(self, served: Served, request: dict[str, list[str]]) -> int:
        expected = self._parties(served)
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
        return self._stub(party).Embed.future(
            request, timeout=timeout, wait_for_ready=True
        )

    def _stub(self, party: str) -> peer_pb2_grpc.PeerStub:
        """One stub per feature party, made on first use."""
        stub = self._stubs.get(party)
        if stub is None:
            stub = self._stubs[party] = peer_pb2_grpc.PeerStub(self._channel(party))
        return stub

    def _received(
        self, served: Served, party: str, keys: list[str], future: object
    ) -> Embedded:
        try:
            reply = serde.embed_reply_from_proto(future.result(), len(keys))
        except grpc.RpcError as exc:
            message = (
                f"party {party} did not answer Embed: {exc.code().name}: "
                f"{exc.details()}"
            )
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # Its part of the version was refused there (a changed file):
                # no retry helps.
                self.keep_out("part", party, message)
                raise DataError(message) from None
            # Any other reason the caller of Score cannot fix: the request
            # fails as UNAVAILABLE (no code relayed).
            raise PeerError(message, rpc="Embed") from None
        self.check_part(served.model, party, reply.export)
        self._saw(party, (reply.model_digest, reply.table_digest))
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
        wait = EMBED_TIMEOUT if timeout is None else min(timeout, EMBED_TIMEOUT)
        wait = max(wait, 0.001)  # a deadline already passed: fail at once
        calls = {
            p: self._embed(served, p, keys, wait) for p, keys in missing.items() if keys
        }
        unknown: dict[str, set[str]] = {p: set() for p in wanted}
        for party, call in calls.items():
            keys = missing[party]
            reply = self._received(served, party, keys, call)
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
        """What ``GetServingStatus`` reports: the base view with each feature
        party's part as its last answer showed it, the tasks and the cache."""
        view = super().view()
        served = self._served.get(self.version)
        if served is None:
            return view
        peers = []
        for party, _ in served.model.peers:
            digest, table_digest = self.seen.get(party, ("", ""))
            peers.append(PartView(party, digest, table_digest=table_digest))
        return dataclasses.replace(
            view,
            tasks=served.model.tasks,
            parts=(*peers, *view.parts),
            cached_outputs=len(self.cache),
        )
