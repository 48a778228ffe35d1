"""The handshake: every party is who the job says, speaks our protocol and produces
outputs the fuse model can take; then the parties align their rows privately
(PSI) while they prepare the job."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import grpc

from splitrec.common.errors import ConfigError, HandshakeError, PeerError
from splitrec.common.pipeline_plan import read_party_plans
from splitrec.config.job import JobConfig
from splitrec.config.jobspec import JobParty, JobSpec, PartyDescription
from splitrec.config.party import PartyRole
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.failures import most_telling
from splitrec.coordinator.fan_out import at_every_party
from splitrec.coordinator.model_export import warm_start
from splitrec.models.registry import combination_problem
from splitrec.privacy.secure_aggregation.rules import secure_problem
from splitrec.v1 import control_pb2
from splitrec.wire.version import PROTOCOL_VERSION

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedJob:
    """What the parties agreed on in one handshake (re-derived after every
    alignment, never reused from an earlier one)."""

    spec: JobSpec
    train_rows: int
    validation_rows: int
    steps_per_epoch: int
    alignment_cached: bool = False
    aligned_rows: int = 0
    # Each party's fingerprint (see ``splitrec.config.fingerprint``), by party.
    fingerprints: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Embedding DP accounted per user: the most training rows about one user
    # at any feature party (0 when not accounted per user).
    max_user_rows: int = 0

    @property
    def rows(self) -> dict[str, int]:
        """The row counts a resumed job must find again."""
        return {
            "aligned": self.aligned_rows,
            "train": self.train_rows,
            "validation": self.validation_rows,
            "steps_per_epoch": self.steps_per_epoch,
        }


def check_descriptions(
    config: JobConfig, descriptions: dict[str, PartyDescription]
) -> None:
    """Raises ``HandshakeError`` naming the party and the mismatch."""
    for name, described in descriptions.items():
        address = config.party(name).address
        if described.party != name:
            raise HandshakeError(
                f"the server at {address} is party {described.party!r}, but "
                f"{config.source} lists it as {name!r}; fix the address or the name"
            )
        if described.protocol_version != PROTOCOL_VERSION:
            raise HandshakeError(
                f"party {name} speaks protocol {described.protocol_version!r}, "
                f"the coordinator {PROTOCOL_VERSION!r}; run the same release "
                "everywhere"
            )
        should_label = name == config.label_party
        if should_label != (described.role is PartyRole.LABEL):
            raise HandshakeError(
                f"{config.source} names {config.label_party!r} as label party, "
                f"but party {name} is configured as a {described.role.value} party"
            )
    label = descriptions.get(config.label_party)
    if label is not None:
        outputs = {p.name: descriptions[p.name].output for p in config.parties}
        problem = combination_problem(
            label.output.family, outputs, label.aggregation or "concat"
        )
        if problem is not None:
            raise HandshakeError(problem)
        problem = secure_problem(
            label.secure_aggregation,
            label.aggregation or "concat",
            len(config.parties) - 1,
            config.compression,
        )
        if problem is not None:
            raise HandshakeError(f"party {config.label_party}: {problem}")


def job_spec(config: JobConfig, descriptions: dict[str, PartyDescription]) -> JobSpec:
    return JobSpec(
        job_id=config.job,
        seed=config.seed,
        batch_size=config.batch_size,
        epochs=config.epochs,
        optimizer=config.optimizer,
        learning_rate=config.learning_rate,
        validation_fraction=config.validation_fraction,
        label_party=config.label_party,
        pipeline_size=config.max_pipeline_size
        if config.pipeline_size == "auto"
        else config.pipeline_size,
        pipeline_warmup_steps=config.pipeline_warmup_steps,
        pipeline_auto=config.pipeline_size == "auto",
        compensation=config.compensation,
        pipeline_plan=_pipeline_plan(config),
        strategy=config.strategy_name,
        local_steps=config.local_steps if config.strategy_name == "async" else 1,
        compression=config.compression,
        compression_ratio=config.compression_ratio,
        privacy=config.privacy,
        parties=tuple(
            JobParty(
                p.name,
                descriptions[p.name].role,
                descriptions[p.name].output,
                p.expected_identity,
            )
            for p in config.parties
        ),
        aggregation=descriptions[config.label_party].aggregation or "concat",
        secure_aggregation=descriptions[config.label_party].secure_aggregation,
        init_from=warm_start(config),
        dataset=config.dataset,
    )


def wait_for_calls(
    pending: set[grpc.Future], timeout: float | None = None
) -> tuple[set, set]:
    """Blocks until at least one call of ``pending`` is done (or ``timeout``
    passes): (done, pending)."""
    finished = threading.Event()
    for call in pending:
        call.add_done_callback(lambda _: finished.set())
    deadline = None if timeout is None else time.monotonic() + timeout
    # Short waits: a stop signal's handler runs only when this (the main)
    # thread runs, and the kernel may have handed the signal to another one.
    while not finished.is_set():
        left = _WAKE_SECONDS if deadline is None else deadline - time.monotonic()
        if left <= 0:
            break
        finished.wait(min(left, _WAKE_SECONDS))
    done = {call for call in pending if call.done()}
    return done, pending - done


_WAKE_SECONDS = 0.5
# After a party's PrepareJob fails, how long the others may still answer: one
# party's real reason (a permanent one) often shows up as a broken PSI stream at
# its peer a moment earlier.
_FAILURE_GRACE_SECONDS = 2.0


def _prepare_all(
    spec: JobSpec, clients: dict[str, PartyClient], timeout: float
) -> dict[str, control_pb2.PrepareJobReply]:
    """PrepareJob at every party at once (they align their rows with each other).

    A failure cancels the others' calls, after a short grace; the most telling
    failure is raised (a permanent one first). Each round has its own attempt
    token, so PSI streams of an earlier round never join it.
    """
    attempt = secrets.token_hex(8)
    calls = {
        name: client.prepare(spec, timeout, attempt) for name, client in clients.items()
    }
    by_call = {id(call): name for name, call in calls.items()}
    pending = set(calls.values())
    replies, failures = {}, []
    deadline = None
    try:
        while pending and (deadline is None or time.monotonic() < deadline):
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = wait_for_calls(pending, wait)
            for call in done:
                name = by_call[id(call)]
                try:
                    replies[name] = clients[name].prepared(call)
                except PeerError as exc:
                    failures.append(exc)
                    deadline = deadline or time.monotonic() + _FAILURE_GRACE_SECONDS
    finally:
        for call in pending:
            call.cancel()
    if failures:
        raise most_telling(failures)
    return replies


def describe_all(
    config: JobConfig, clients: dict[str, PartyClient], timeout: float
) -> dict[str, PartyDescription]:
    """Every party's description, waiting up to ``timeout`` for each; checked."""
    descriptions = at_every_party(clients, lambda c: c.describe(timeout))
    for name, described in descriptions.items():
        logger.info(
            "party %s: %s party, %d rows, features %s",
            name,
            described.role.value,
            described.num_rows,
            ", ".join(described.features),
        )
    check_descriptions(config, descriptions)
    return descriptions


def prepare_all(
    config: JobConfig,
    clients: dict[str, PartyClient],
    descriptions: dict[str, PartyDescription],
) -> PreparedJob:
    """Prepares the job at every party at once: they align their rows privately
    and build their models; checks that they agree."""
    spec = job_spec(config, descriptions)
    prepared = _prepare_all(spec, clients, config.align_timeout)
    rows = {n: r.aligned_rows for n, r in prepared.items()}
    if len(set(rows.values())) != 1:
        raise HandshakeError(f"parties disagree on the aligned rows: {rows}")
    cached = all(r.alignment_cached for r in prepared.values())
    logger.info(
        "rows aligned privately: %d in the intersection%s",
        next(iter(rows.values())),
        " (cached alignment, no PSI run)" if cached else "",
    )
    steps = {n: r.steps_per_epoch for n, r in prepared.items()}
    if len(set(steps.values())) != 1:
        raise HandshakeError(f"parties disagree on steps per epoch: {steps}")
    warnings = tuple(w for r in prepared.values() for w in r.warnings)
    for warning in warnings:
        logger.warning("%s", warning)
    first = next(iter(prepared.values()))
    return PreparedJob(
        spec,
        first.train_rows,
        first.validation_rows,
        first.steps_per_epoch,
        cached,
        first.aligned_rows,
        {n: dict(d.fingerprint) for n, d in descriptions.items()},
        warnings,
        max(r.max_user_rows for r in prepared.values()),
    )


def handshake(config: JobConfig, clients: dict[str, PartyClient]) -> PreparedJob:
    """Describes and prepares every party; all calls run concurrently."""
    descriptions = describe_all(config, clients, config.connect_timeout)
    return prepare_all(config, clients, descriptions)


def _pipeline_plan(config: JobConfig) -> tuple[tuple[str, int, int], ...]:
    """The depths ``strategy.pipeline_plan`` names, checked against the job."""
    if config.pipeline_plan is None:
        return ()
    where = f"{config.source}: key 'strategy.pipeline_plan'"
    if config.pipeline_size != "auto":
        raise ConfigError(f"{where}: a plan is for pipeline_size auto")
    plans = read_party_plans(config.pipeline_plan)
    feature = [p.name for p in config.parties if p.name != config.label_party]
    for party in plans:
        if party not in feature:
            raise ConfigError(
                f"{where}: {config.pipeline_plan} names {party!r}, not a feature "
                f"party of the job ({', '.join(feature)})"
            )
    deepest = max((d for plan in plans.values() for d in plan.values()), default=1)
    if deepest > config.max_pipeline_size:
        raise ConfigError(
            f"{where}: {config.pipeline_plan} takes depth {deepest}, deeper than "
            f"strategy.max_pipeline_size {config.max_pipeline_size}; raise it"
        )
    return tuple(
        (party, step, depth)
        for party, plan in sorted(plans.items())
        for step, depth in sorted(plan.items())
    )
