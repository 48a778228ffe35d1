"""The label party's side of private ID alignment: PSI with every feature party.

The label party is the hub. Each feature party opens one ``Intersect`` stream;
the hub runs two-party ECDH-PSI with each (see ``psi_feature``) using one key for
the job, intersects the results over all pairs (the rows every party holds),
orders them by ID, and tells each feature party which of its rows those are by
their doubly blinded values of that pair. A feature party thus learns only the
rows common to all parties; the hub learns each pairwise intersection.

Before any PSI the parties exchange the digests of their ID columns: when every
party still holds the alignment cached for exactly these digests, it is reused.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from splitrec.common.batching import index_dtype
from splitrec.common.errors import (
    HandshakeError,
    InvalidMessageError,
    PeerError,
    SplitRecError,
)
from splitrec.common.paths import confined
from splitrec.config.jobspec import JobSpec
from splitrec.config.party import PartyConfig
from splitrec.engine import Engine
from splitrec.party_server.alignment import (
    Alignment,
    cache_key,
    order_by_id,
    read_cache,
    write_cache,
)
from splitrec.party_server.data_slice import DataSlice
from splitrec.party_server.psi_spool import (
    SPOOL_PREFIX,
    Buckets,
    ValueFile,
    bucket_count,
    matches,
)
from splitrec.party_server.status_codes import peer_failure
from splitrec.privacy import psi
from splitrec.v1 import peer_pb2
from splitrec.wire import serde

logger = logging.getLogger(__name__)


class HubSession:
    """One job's alignment at the label party, shared by its feature streams."""

    def __init__(
        self,
        spec: JobSpec,
        config: PartyConfig,
        data: DataSlice,
        timeout: float,
        attempt: str = "",
        engine: Engine | None = None,
    ) -> None:
        self.spec = spec
        # The PrepareJob round: only streams of the same round join the session.
        self.attempt = attempt
        self.config = config
        self.data = data
        self.timeout = timeout
        self.expected = set(spec.feature_parties)
        self._cond = threading.Condition()
        self._hellos: dict[str, peer_pb2.PsiHello] = {}
        self._caches: dict[str, bool] = {}
        self._pairs: dict[str, np.ndarray] = {}
        self._doubles: dict[str, ValueFile] = {}
        # The session's folder of PSI values (made by ``run``).
        self._folder: Path | None = None
        self._final: np.ndarray | None = None
        self._use_cache: bool | None = None
        self._key: str | None = None
        self._error: Exception | None = None
        # The blinding runs on ``engine`` (by default a pool of the party's own).
        self._blinder = psi.Blinder(psi.new_key(), engine=engine)
        self._own: Future | None = None

    # --- the PrepareJob side ------------------------------------------------

    def run(self, cancelled: Callable[[], bool]) -> Alignment:
        """Aligns with every feature party; returns this party's rows."""
        folder = confined(self.config.output_dir, self.spec.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        # What PSI keeps until its end, on disk (see ``psi_spool``); the values
        # the streams still send at the end are read through open handles.
        self._folder = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX, dir=folder))
        try:
            return self._run(folder, cancelled)
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    @property
    def _spool(self) -> Path:
        assert self._folder is not None, "the session's values live in run()"
        return self._folder

    def _run(self, folder: Path, cancelled: Callable[[], bool]) -> Alignment:
        started = time.monotonic()
        with self._blinder, ThreadPoolExecutor(1, "psi-own") as pool:
            try:
                self._wait(
                    lambda: len(self._hellos) == len(self.expected),
                    cancelled,
                    "every feature party's PSI hello",
                    self.timeout,
                )
                digests = {n: h.id_digest for n, h in self._hellos.items()}
                digests[self.config.party] = self.data.id_digest
                key = cache_key(self.spec.job_id, digests)
                cached = read_cache(folder, key)
                if cached is None:  # PSI will run: start the costly blinding now
                    self._start_blinding(pool)
                with self._cond:
                    self._key = key
                    self._cond.notify_all()
                self._wait(
                    lambda: len(self._caches) == len(self.expected),
                    cancelled,
                    "every feature party's cache answer",
                    self.timeout,
                )
                use_cache = cached is not None and all(self._caches.values())
                if not use_cache:
                    self._start_blinding(pool)
                with self._cond:
                    self._use_cache = use_cache
                    self._cond.notify_all()
                if use_cache:
                    assert cached is not None
                    final = cached
                else:
                    self._wait(
                        lambda: len(self._pairs) == len(self.expected),
                        cancelled,
                        "PSI with every feature party",
                        None,
                    )
                    final = self._intersection()
                    write_cache(folder, key, final)
                with self._cond:
                    self._final = final
                    self._cond.notify_all()
            except BaseException as exc:
                self.fail(exc if isinstance(exc, Exception) else PeerError(str(exc)))
                if self._own is not None:
                    self._own.cancel()
                raise
        logger.info(
            "aligned %d of %d rows with %s%s in %.1f s",
            final.size,
            self.data.num_rows,
            ", ".join(sorted(self.expected)),
            " (cached)" if use_cache else "",
            time.monotonic() - started,
        )
        return Alignment(final, use_cache)

    def _start_blinding(self, pool: ThreadPoolExecutor) -> None:
        """Blinds this party's own IDs in the background, once per session."""
        if self._own is None:
            self._own = pool.submit(self._blind_own)

    def _blind_own(self) -> ValueFile:
        own = ValueFile(self._spool / "own-blinded", psi.POINT_BYTES)
        for chunk in self._blinder.hash_and_blind_chunks(self.data.ids):
            own.append(chunk)
        own.close()
        return own

    def _intersection(self) -> np.ndarray:
        pairs = list(self._pairs.values())
        rows = pairs[0] if pairs else np.arange(self.data.num_rows)
        for pair in pairs[1:]:
            rows = np.intersect1d(rows, pair, assume_unique=True)
        if rows.size == 0:
            sizes = {p: int(r.size) for p, r in self._pairs.items()}
            raise HandshakeError(
                f"no row ID is held by every party (empty intersection; rows shared "
                f"with {self.config.party} per party: {sizes}); check that the ID "
                "columns hold the same kind of key"
            )
        rows = rows.astype(index_dtype(self.data.num_rows), copy=False)
        return order_by_id(self.data, rows, self._spool)

    def fail(self, error: Exception) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def _wait(
        self,
        ready: Callable[[], bool],
        cancelled: Callable[[], bool],
        what: str,
        limit: float | None,
    ) -> None:
        """Waits until ``ready()``, for at most ``limit`` seconds (``None``: no
        limit); a failure anywhere in the session or ``cancelled()`` ends it."""
        deadline = None if limit is None else time.monotonic() + limit
        with self._cond:
            while not ready():
                if self._error is not None:
                    raise self._error
                if cancelled():
                    raise PeerError(f"alignment of job {self.spec.job_id} cancelled")
                if deadline is not None and time.monotonic() >= deadline:
                    missing = sorted(self.expected - set(self._hellos))
                    raise PeerError(
                        f"waited {limit:.0f} s for {what}"
                        + (f"; no PSI stream yet from {missing}" if missing else "")
                    )
                self._cond.wait(0.5)

    # --- the stream side ----------------------------------------------------

    def serve(
        self, hello: peer_pb2.PsiHello, requests: Iterator[peer_pb2.PsiMessage]
    ) -> Iterator[peer_pb2.PsiMessage]:
        """Runs the protocol with one feature party (the ``Intersect`` handler)."""
        party = hello.party
        try:
            yield from self._serve(party, hello, requests)
        except Exception as exc:
            self.fail(peer_failure(f"PSI with party {party} failed", exc))
            raise

    def _serve(
        self, party: str, hello: peer_pb2.PsiHello, requests: Iterator
    ) -> Iterator[peer_pb2.PsiMessage]:
        never = lambda: False  # noqa: E731
        with self._cond:
            if party in self._hellos:
                raise InvalidMessageError(f"a second PSI stream from party {party}")
            self._hellos[party] = hello
            self._cond.notify_all()
        self._wait(
            lambda: self._key is not None,
            never,
            "the alignment's cache key",
            self.timeout,
        )
        yield peer_pb2.PsiMessage(
            hello=peer_pb2.PsiHello(
                job_id=self.spec.job_id,
                party=self.config.party,
                count=self.data.num_rows,
                id_digest=self.data.id_digest,
                cache_key=self._key,
            )
        )
        answer = next(requests, None)
        if answer is None or answer.WhichOneof("kind") != "cache":
            raise InvalidMessageError("expected the PSI cache answer")
        with self._cond:
            self._caches[party] = answer.cache.has_cache
            self._cond.notify_all()
        self._wait(
            lambda: self._use_cache is not None,
            never,
            "the cache decision",
            self.timeout,
        )
        yield peer_pb2.PsiMessage(cache=peer_pb2.PsiCache(use_cache=self._use_cache))
        if not self._use_cache:
            yield from self._exchange(party, hello.count, requests)
        self._wait(lambda: self._final is not None, never, "the intersection", None)
        if not self._use_cache:
            doubles, final = self._doubles[party], self._final
            step = serde.PSI_CHUNK_VALUES
            aligned = (
                doubles.take(final[start : start + step])
                for start in range(0, final.size, step)
            )
            yield from serde.psi_stream_to_proto("aligned", aligned, psi.MATCH_BYTES)
            doubles.release()
        done = next(requests, None)
        if done is None or done.WhichOneof("kind") != "done":
            raise InvalidMessageError("expected PsiDone at the end of the PSI stream")
        if done.done.rows != self._final.size:
            raise PeerError(
                f"party {party} aligned {done.done.rows} rows, this party "
                f"{self._final.size}"
            )

    def _exchange(
        self, party: str, count: int, requests: Iterator
    ) -> Iterator[peer_pb2.PsiMessage]:
        """The values, a chunk at a time: this party's blinded IDs out, the
        feature party's in, blinded again and sent back as they come; what the
        match needs goes to bucket files."""
        assert self._own is not None
        own = self._own.result()
        yield from serde.psi_stream_to_proto(
            "blinded", own.chunks(serde.PSI_CHUNK_VALUES), psi.POINT_BYTES
        )
        buckets = bucket_count(max(self.data.num_rows, count))
        theirs = Buckets(self._spool, f"{party}-theirs", psi.MATCH_BYTES, buckets)
        received = serde.psi_value_chunks(requests, "blinded", psi.POINT_BYTES, count)

        def doubled() -> Iterator[bytes]:
            for double in self._blinder.blind_chunks(received, psi.MATCH_BYTES):
                theirs.add(double)
                yield double

        try:
            yield from serde.psi_stream_to_proto(
                "double_blinded", doubled(), psi.MATCH_BYTES
            )
        except ValueError as exc:
            if isinstance(exc, SplitRecError):
                raise
            raise InvalidMessageError(f"unusable blinded values: {exc}") from None
        own_double = ValueFile(self._spool / f"{party}-own-double", psi.MATCH_BYTES)
        mine = Buckets(self._spool, f"{party}-own", psi.MATCH_BYTES, buckets)
        for chunk in serde.psi_value_chunks(
            requests, "double_blinded", psi.MATCH_BYTES, self.data.num_rows
        ):
            own_double.append(chunk)
            mine.add(chunk)
        own_double.close()
        shared = matches(mine, theirs)
        with self._cond:
            self._doubles[party] = own_double
            self._pairs[party] = shared
            self._cond.notify_all()


class PsiHub:
    """The label party's alignment sessions by job, met by streams and PrepareJob.

    A job has one session at a time, that of its latest PrepareJob round; a PSI
    stream joins the session of its own round only, so a stream left over from
    an earlier try cannot disturb (or be confused with) a new one.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, HubSession] = {}
        self._cond = threading.Condition()

    def open(self, session: HubSession) -> None:
        with self._cond:
            previous = self._sessions.get(session.spec.job_id)
            self._sessions[session.spec.job_id] = session
            self._cond.notify_all()
        if previous is not None:
            previous.fail(PeerError("replaced by a newer alignment of the job"))

    def close(self, session: HubSession) -> None:
        with self._cond:
            if self._sessions.get(session.spec.job_id) is session:
                del self._sessions[session.spec.job_id]

    def session(
        self,
        job_id: str,
        attempt: str,
        timeout: float,
        cancelled: Callable[[], bool],
    ) -> HubSession:
        """The session of ``job_id`` and ``attempt``; waits for its PrepareJob up
        to ``timeout`` (a feature party's stream may arrive first) or until
        ``cancelled``."""
        deadline = time.monotonic() + timeout

        def found() -> HubSession | None:
            session = self._sessions.get(job_id)
            return session if session and session.attempt == attempt else None

        with self._cond:
            while found() is None:
                if cancelled():
                    raise PeerError(f"the PSI stream for job {job_id!r} was cancelled")
                if time.monotonic() >= deadline:
                    raise PeerError(
                        f"no alignment of job {job_id!r} (round {attempt or '-'}) "
                        f"started here within {timeout:.0f} s; the coordinator "
                        "prepares every party at once"
                    )
                self._cond.wait(0.2)
            return found()
