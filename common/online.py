"""What online scoring passes between its pieces, as plain values (the
messages are in ``proto/splitrec/v1/scoring.proto`` and ``peer.proto``;
``splitrec.wire.serde`` converts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ExportIdentity:
    """The export a served part came from, as its ``model.json`` names it."""

    job: str = ""
    version: str = ""
    epoch: int = 0
    export_id: str = ""

    def differs(self, other: ExportIdentity) -> str:
        """What ``other`` names otherwise than this one ("" when nothing)."""
        pairs = (
            ("job", self.job, other.job),
            ("version", self.version, other.version),
            ("epoch", self.epoch, other.epoch),
            ("export id", self.export_id, other.export_id),
        )
        return ", ".join(f"{n} {b!r} (not {a!r})" for n, a, b in pairs if a != b)


@dataclass(frozen=True)
class Embedded:
    """A feature party's answer: the outputs of the keys its table holds."""

    model_digest: str
    table_digest: str
    # ``[known keys, width]`` in request order.
    outputs: np.ndarray
    # Positions in the request of the keys the table does not hold.
    unknown: np.ndarray
    export: ExportIdentity = ExportIdentity()


@dataclass(frozen=True)
class Pushed:
    """A chunk of a feature party's table outputs, sent ahead of requests."""

    model_digest: str
    table_digest: str
    keys: list[str]
    # ``[keys, width]``.
    outputs: np.ndarray
    export: ExportIdentity = ExportIdentity()


@dataclass(frozen=True)
class Scored:
    """The label party's answer to a scoring request."""

    version: str
    tasks: tuple[str, ...]
    # ``[rows, tasks]``; a row with a problem holds NaN.
    scores: np.ndarray
    problems: list[str]
    cached: int
    fetched: int


@dataclass(frozen=True)
class PartView:
    """One party's served part as the label party knows it."""

    party: str
    model_digest: str
    key_column: str = ""
    entities: int = 0
    table_digest: str = ""
    export: ExportIdentity = ExportIdentity()


@dataclass(frozen=True)
class KeptOut:
    """A version, table or feature party's part a party refused to load,
    while it serves what it had."""

    kind: str
    name: str
    reason: str


@dataclass(frozen=True)
class ServingView:
    ready: bool
    problem: str
    job: str
    version: str
    tasks: tuple[str, ...] = ()
    parts: tuple[PartView, ...] = ()
    cached_outputs: int = 0
    kept_out: tuple[KeptOut, ...] = ()
