"""Secure aggregation at the parties: the key exchange over the peer streams
and the masking of hidden tensors (see ``splitrec.privacy.secure_aggregation``).

A feature party sends its signed ``KeyShare`` right after a stream's Hello;
the label party's ``ShareBoard`` waits until every feature party of the job
has sent one and answers each with all of them. The feature party's
``PairwiseMasking`` checks every share, derives its pair keys once, and masks
each hidden tensor it sends.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from splitrec.common.errors import JobStateError, NotAllowedError, PeerError
from splitrec.config.jobspec import JobSpec
from splitrec.party_server.data_slice import DataSlice
from splitrec.privacy.secure_aggregation import fixed_point
from splitrec.privacy.secure_aggregation.key_shares import (
    KeyShare,
    check_share,
    job_secret,
    make_share,
    shares_digest,
)
from splitrec.privacy.secure_aggregation.masks import MaskContext, Masker, pair_key
from splitrec.security.tls import Credentials

_POLL_SECONDS = 0.2


def key_binding(spec: JobSpec, data: DataSlice) -> str:
    """What a party's job key is bound to: the job's spec and the party's rows."""
    text = f"{spec!r}\0{data.content_digest}\0{data.id_digest}"
    return hashlib.sha256(text.encode()).hexdigest()


class PairwiseMasking:
    """A feature party's side: its key share and the masks of its tensors."""

    def __init__(
        self,
        spec: JobSpec,
        party: str,
        data: DataSlice,
        key_file: Path,
        credentials: Credentials | None,
    ) -> None:
        self._spec = spec
        self._party = party
        self._credentials = credentials
        self._secret = job_secret(key_file, key_binding(spec, data))
        public = self._secret.public_key().public_bytes_raw()
        self.share = make_share(spec.job_id, party, public, credentials)
        self._masker: Masker | None = None
        self._digest = b""
        self._lock = threading.Lock()

    @property
    def parties(self) -> int:
        return len(self._spec.feature_parties)

    def accept(self, shares: list[KeyShare]) -> None:
        """Checks the shares the label party relayed and derives the pair keys
        (once; later streams must relay the same shares)."""
        expected = sorted(self._spec.feature_parties)
        named = sorted(s.party for s in shares)
        if named != expected:
            raise NotAllowedError(
                f"party {self._party}: {self._spec.label_party} relayed key shares "
                f"of {named}, but the job's feature parties are {expected}; refused"
            )
        by_party = {s.party: s for s in shares}
        if by_party[self._party] != self.share:
            raise NotAllowedError(
                f"party {self._party}: {self._spec.label_party} relayed a key share "
                f"in {self._party}'s name that {self._party} did not send; refused"
            )
        digest = shares_digest(shares)
        with self._lock:
            if self._masker is not None:
                if digest != self._digest:
                    raise NotAllowedError(
                        f"party {self._party}: {self._spec.label_party} relayed "
                        "other key shares than before in this job; refused"
                    )
                return
            keys = {}
            for name, share in by_party.items():
                if name == self._party:
                    continue
                check_share(
                    share,
                    self._spec.job_id,
                    name,
                    self._spec.identity(name),
                    self._credentials,
                    self._party,
                )
                keys[name] = pair_key(
                    self._spec.job_id,
                    (self._party, self._secret),
                    (name, share.public_key),
                )
            self._masker = Masker(self._party, keys)
            self._digest = digest

    def mask(
        self, hidden: np.ndarray, context: MaskContext, what: str
    ) -> tuple[np.ndarray, bytes]:
        """``hidden`` in fixed point plus this party's masks, and the digest
        of the shares the masks come from."""
        if self._masker is None:
            raise JobStateError(f"party {self._party}: the job's keys were not agreed")
        encoded = fixed_point.encode(hidden, self.parties, what)
        return self._masker.apply(encoded, context), self._digest


class ShareBoard:
    """The label party's side: every feature party's latest share, relayed to
    each once all are in."""

    def __init__(self, spec: JobSpec, party: str, credentials: Credentials | None):
        self._spec = spec
        self._party = party
        self._credentials = credentials
        self._shares: dict[str, KeyShare] = {}
        # The digest of the shares once every feature party's is in (checked
        # against every masked tensor, so computed once per change).
        self._digest = b""
        self._changed = threading.Condition()

    def offer(
        self,
        share: KeyShare,
        sender: str,
        timeout: float,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> list[KeyShare]:
        """Records ``sender``'s share (refused unless it is sender's own for
        this job, properly signed) and waits for every feature party's."""
        check_share(
            share,
            self._spec.job_id,
            sender,
            self._spec.identity(sender),
            self._credentials,
            self._party,
        )
        deadline = time.monotonic() + timeout
        with self._changed:
            self._shares[sender] = share
            if len(self._shares) == len(self._spec.feature_parties):
                self._digest = shares_digest(list(self._shares.values()))
            self._changed.notify_all()
            while len(self._shares) < len(self._spec.feature_parties):
                left = deadline - time.monotonic()
                if left <= 0 or cancelled():
                    missing = sorted(
                        set(self._spec.feature_parties) - set(self._shares)
                    )
                    raise PeerError(
                        f"party {self._party}: no key share from {missing} within "
                        f"{timeout:g} s; every feature party must open its stream"
                    )
                self._changed.wait(min(left, _POLL_SECONDS))
            return [self._shares[name] for name in self._spec.feature_parties]

    @property
    def digest(self) -> bytes:
        """The digest of the current shares (empty until all are in)."""
        return self._digest
