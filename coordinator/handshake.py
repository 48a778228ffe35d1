"""The handshake: every party is who the job says, speaks our protocol, holds the
same rows in the same order, and produces outputs the fuse model can take."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from common.config import JobConfig, PartyRole
from common.errors import HandshakeError
from common.jobspec import JobParty, JobSpec, PartyDescription
from common.version import PROTOCOL_VERSION
from coordinator.client import PartyClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedJob:
    spec: JobSpec
    train_rows: int
    validation_rows: int
    steps_per_epoch: int


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
    _check_same_rows(descriptions)
    dims = {n: d.output.embedding_dim for n, d in descriptions.items()}
    if len(set(dims.values())) != 1:
        raise HandshakeError(
            f"output shapes differ: embedding_dim per party {dims}; the FM term "
            "needs one embedding_dim at every party (model.embedding_dim in each "
            "party config)"
        )


def _check_same_rows(descriptions: dict[str, PartyDescription]) -> None:
    reference_name, reference = next(iter(descriptions.items()))
    for name, described in descriptions.items():
        if described.num_rows != reference.num_rows:
            raise HandshakeError(
                f"party {name} holds {described.num_rows} rows, party {reference_name} "
                f"{reference.num_rows}; every party must hold the same row IDs in the "
                "same order"
            )
        if described.id_digest != reference.id_digest:
            raise HandshakeError(
                f"the row IDs of party {name} differ from those of party "
                f"{reference_name} (same count, different IDs or order); align the "
                "files so every party holds the same IDs in the same order"
            )


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
        pipeline_size=config.pipeline_size,
        pipeline_warmup_steps=config.pipeline_warmup_steps,
        parties=tuple(
            JobParty(p.name, descriptions[p.name].role, descriptions[p.name].output)
            for p in config.parties
        ),
    )


def handshake(config: JobConfig, clients: dict[str, PartyClient]) -> PreparedJob:
    """Describes and prepares every party; all calls run concurrently."""
    with ThreadPoolExecutor(len(clients)) as pool:
        futures = {
            n: pool.submit(c.describe, config.connect_timeout)
            for n, c in clients.items()
        }
        descriptions = {n: f.result() for n, f in futures.items()}
    for name, described in descriptions.items():
        logger.info(
            "party %s: %s party, %d rows, features %s",
            name,
            described.role.value,
            described.num_rows,
            ", ".join(described.features),
        )
    check_descriptions(config, descriptions)
    spec = job_spec(config, descriptions)
    with ThreadPoolExecutor(len(clients)) as pool:
        replies = {n: pool.submit(c.prepare, spec) for n, c in clients.items()}
        prepared = {n: f.result() for n, f in replies.items()}
    steps = {n: r.steps_per_epoch for n, r in prepared.items()}
    if len(set(steps.values())) != 1:
        raise HandshakeError(f"parties disagree on steps per epoch: {steps}")
    first = next(iter(prepared.values()))
    return PreparedJob(
        spec, first.train_rows, first.validation_rows, first.steps_per_epoch
    )
