"""Base output specs for tests, as the families declare them."""

from __future__ import annotations

from common.config import ModelConfig
from common.jobspec import OutputSpec
from common.models.registry import FAMILIES


def output_of(family: str, deep: int = 32, embedding_dim: int = 8) -> OutputSpec:
    """The output spec of a ``family`` base whose last deep layer has ``deep``
    units."""
    model = ModelConfig(embedding_dim, (deep,), family=family)
    return OutputSpec(family, FAMILIES[family].parts(model))


def deepfm_output(deep: int = 32, embedding_dim: int = 8) -> OutputSpec:
    return output_of("deepfm", deep, embedding_dim)
