"""What every party of a job agrees on: the job's settings and each base's output."""

from __future__ import annotations

from dataclasses import dataclass, field

from splitrec.common.metrics import Metrics
from splitrec.common.online import ServingView
from splitrec.common.traffic import Traffic
from splitrec.config.party import PartyRole
from splitrec.config.privacy import PrivacySettings, PrivacySpent

# none: a stale forward runs on the weights it has; predict: on the weights
# predicted for its step (see ``splitrec.models.steps.BaseStep``).
COMPENSATIONS = ("none", "predict")
STRATEGIES = ("sync", "async")


@dataclass(frozen=True)
class OutputSpec:
    """What a party's base model sends forward, per row, and what it is.

    ``parts`` names the columns of the hidden tensor in order, with their sizes
    (DeepFM: ``deep``, ``embedding_sum``, ``square_sum``, ``first_order``); the
    fuse of the label party's family splits the tensor by them. ``structure`` is
    a digest of the base model's structure: equal while the model is the same,
    revealing nothing else.
    """

    family: str
    parts: tuple[tuple[str, int], ...]
    structure: str = ""

    @property
    def width(self) -> int:
        return sum(size for _, size in self.parts)

    def size(self, part: str) -> int:
        """The size of ``part``, 0 when the output has no such part."""
        return dict(self.parts).get(part, 0)

    def __str__(self) -> str:
        parts = " | ".join(f"{name} {size}" for name, size in self.parts)
        return f"{self.family} [{parts}]"


@dataclass(frozen=True)
class JobParty:
    name: str
    role: PartyRole
    output: OutputSpec
    # The identity its certificate carries (its name when empty).
    identity: str = ""


@dataclass(frozen=True)
class ModelVersion:
    """An exported model version of a job, trained for ``epoch`` epochs, as
    the coordinator recorded its export: the export id and each party's
    file-list digest (``splitrec.party_server.export_files``)."""

    job: str
    version: str
    epoch: int = 0
    export_id: str = ""
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartExport:
    """What a party reports of its part of an export: its variables' digest,
    its file list's digest and the export id the part was written by."""

    model_digest: str
    files_digest: str
    export_id: str


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    seed: int
    batch_size: int
    epochs: int
    optimizer: str
    learning_rate: float
    validation_fraction: float
    label_party: str
    parties: tuple[JobParty, ...]
    # Forwards a feature party keeps in flight: fixed, or under
    # ``pipeline_auto`` the most it may choose from the measured round trip.
    pipeline_size: int = 1
    pipeline_warmup_steps: int = 0
    pipeline_auto: bool = False
    # What a stale forward does about the updates it lacks (``COMPENSATIONS``).
    compensation: str = "none"
    # sync: every party updates at every step; async: a feature party
    # updates once per ``local_steps`` steps, with all of their gradients.
    strategy: str = "sync"
    local_steps: int = 1
    # Depths to take at control points instead of choosing them:
    # (feature party, global step, depth), an earlier auto run's.
    pipeline_plan: tuple[tuple[str, int, int], ...] = ()
    compression: str = "none"
    compression_ratio: float = 1.0
    privacy: PrivacySettings = PrivacySettings()
    # How the label party's fuse combines the base outputs (``AGGREGATIONS``).
    aggregation: str = "concat"
    # Feature parties send masked outputs; the label party sees only their sum.
    secure_aggregation: bool = False
    # Warm start: the exported model every party loads its part of first.
    init_from: ModelVersion | None = None
    # Scoring: every party reads this dataset key of its config instead of its
    # data file and scores it with ``init_from`` (no training).
    dataset: str = ""

    @property
    def scored(self) -> tuple[str, str, str] | None:
        """A scoring job's (job, version, dataset) it is named by; ``None``
        for a training job."""
        if not self.dataset or self.init_from is None:
            return None
        return (self.init_from.job, self.init_from.version, self.dataset)

    @property
    def start_epoch(self) -> int:
        """The first epoch the job trains: after a warm start, the one after
        those its model had trained."""
        return self.init_from.epoch if self.init_from is not None else 0

    def plan_of(self, party: str) -> dict[int, int]:
        """The depths ``pipeline_plan`` gives ``party``: global step → depth."""
        return {
            step: depth for name, step, depth in self.pipeline_plan if name == party
        }

    @property
    def feature_parties(self) -> tuple[str, ...]:
        """Parties whose hidden tensors travel to the label party."""
        return tuple(p.name for p in self.parties if p.name != self.label_party)

    def party(self, name: str) -> JobParty | None:
        return next((p for p in self.parties if p.name == name), None)

    def identity(self, name: str) -> str:
        """The identity ``name``'s certificate must carry."""
        party = self.party(name)
        return (party.identity if party is not None else "") or name

    def position(self, name: str) -> int:
        """Where ``name`` stands among the parties (the fuse model's order)."""
        return [p.name for p in self.parties].index(name)


@dataclass(frozen=True)
class PartyDescription:
    """What a party says of itself in the handshake: no data, only its shape."""

    party: str
    role: PartyRole
    protocol_version: str
    num_rows: int
    output: OutputSpec
    features: tuple[str, ...]
    peers: tuple[str, ...]
    # Keyed digests of what the party trains on, by kind (see
    # ``splitrec.config.fingerprint``).
    fingerprint: dict[str, str] = field(default_factory=dict)
    # The label party's fuse input aggregation; "" at feature parties.
    aggregation: str = ""
    # The label party's: whether it takes the feature parties' outputs only as
    # a securely aggregated sum.
    secure_aggregation: bool = False


@dataclass(frozen=True)
class PeerState:
    """A configured peer and whether it answered a health check just now."""

    name: str
    address: str
    identity: str
    reachable: bool
    detail: str = ""


@dataclass(frozen=True)
class PartyStatusView:
    """What the status RPC shows a person: no raw data, no tensors."""

    description: PartyDescription
    job_id: str
    state: str
    epoch: int
    step: int
    samples_per_second: float
    last_metrics: Metrics | None
    uptime_seconds: float
    peer_traffic: Traffic
    peers: tuple[PeerState, ...] = ()
    transport_security: str = "insecure"
    privacy: PrivacySettings = PrivacySettings()
    # ε spent by embedding DP so far (None when it is off).
    spent: PrivacySpent | None = None
    # Who drives the current job (see ``splitrec.party_server.ownership``).
    job_owner: str = ""
    # Online scoring at the party, when it has a serving section.
    serving: ServingView | None = None
    # A feature party's pipeline: most forwards in flight, last auto depth.
    in_flight_peak: int = 0
    pipeline_depth: int = 0
