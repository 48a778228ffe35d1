"""Base output specs and job specs for tests, as the families declare them."""

from __future__ import annotations

from splitrec.config.jobspec import JobParty, JobSpec, OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.config.party import PartyRole
from splitrec.models.registry import FAMILIES


def output_of(family: str, deep: int = 32, embedding_dim: int = 8) -> OutputSpec:
    """The output spec of a ``family`` base whose last deep layer has ``deep``
    units."""
    model = ModelConfig(embedding_dim, (deep,), family=family)
    return OutputSpec(family, FAMILIES[family].parts(model))


def deepfm_output(deep: int = 32, embedding_dim: int = 8) -> OutputSpec:
    return output_of("deepfm", deep, embedding_dim)


def job_spec(**changes: object) -> JobSpec:
    """A job of alice (a DeepFM feature party) and bob (the label party), with
    the reference settings unless ``changes`` says otherwise."""
    values: dict = dict(
        job_id="job-1",
        seed=1234,
        batch_size=128,
        epochs=5,
        optimizer="adam",
        learning_rate=0.001,
        validation_fraction=0.1,
        label_party="bob",
        parties=(
            JobParty("alice", PartyRole.FEATURE, deepfm_output(32, 8)),
            JobParty("bob", PartyRole.LABEL, deepfm_output(16, 4)),
        ),
    )
    values.update(changes)
    return JobSpec(**values)
