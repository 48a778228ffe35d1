"""Builds each party's models from its config and the job seed.

The party servers and the centralized baseline call the same functions, so equal
job seeds give equal initial weights everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.config import ModelConfig
from common.features import FeatureShape
from common.jobspec import OutputSpec
from common.models.deepfm import DeepFMBase, DeepFMFuse
from common.seeds import derive_seed


def output_spec(model: ModelConfig) -> OutputSpec:
    return OutputSpec(
        deep_units=model.deep_units[-1], embedding_dim=model.embedding_dim
    )


def build_base(
    party: str, shapes: Sequence[FeatureShape], model: ModelConfig, job_seed: int
) -> DeepFMBase:
    return DeepFMBase(
        shapes,
        embedding_dim=model.embedding_dim,
        deep_units=model.deep_units,
        seed=derive_seed(job_seed, "base", party),
        name=f"{party}_base",
    )


def build_fuse(
    specs: Sequence[OutputSpec], model: ModelConfig, job_seed: int
) -> DeepFMFuse:
    return DeepFMFuse(
        specs,
        fuse_units=model.fuse_units,
        seed=derive_seed(job_seed, "fuse"),
        name="fuse",
    )
