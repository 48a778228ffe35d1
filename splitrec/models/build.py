"""Builds each party's models from its config and the job seed.

The party servers and the centralized baseline call the same functions, so equal
job seeds give equal initial weights everywhere. The family's module is imported
here, only where a model is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import keras
import numpy as np

from splitrec.common.errors import ConfigError, HandshakeError
from splitrec.common.seeds import derive_seed
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.custom import builder as custom_builder
from splitrec.models.features import FeatureRows, FeatureShape
from splitrec.models.layers import NoBase, fit_numeric
from splitrec.models.registry import (
    FAMILIES,
    combination_problem,
    fuse_outputs,
    output_spec,
)
from splitrec.models.steps import create_weights


def _module(family: str) -> ModuleType:
    return importlib.import_module(FAMILIES[family].module)


def build_base(
    party: str, shapes: Sequence[FeatureShape], model: ModelConfig, job_seed: int
) -> keras.Model:
    """The party's base; without features (a label party that holds labels
    alone), one that outputs nothing."""
    if not shapes:
        return NoBase(shapes, output_spec(model, shapes), name=f"{party}_base")
    return _module(model.family).BASE(
        shapes,
        model,
        output_spec(model, shapes),
        derive_seed(job_seed, "base", party),
        name=f"{party}_base",
    )


def build_party_base(
    party: str,
    features: FeatureRows,
    train_rows: np.ndarray,
    model: ModelConfig,
    job_seed: int,
) -> keras.Model:
    """The party's base for a job, its numeric features scaled by statistics of
    the job's training rows (the split job and the centralized baseline both
    build it so)."""
    base = build_base(party, features.shapes, model, job_seed)
    if any(s.numeric_columns for s in features.shapes):
        create_weights(base)
        fit_numeric(base, features.numeric_of(train_rows))
    return base


def build_fuse(
    outputs: Mapping[str, OutputSpec], model: ModelConfig, job_seed: int
) -> keras.Model:
    """The label party's fuse over every party's base output (by party name, in
    the job's order; an empty output is left out, see ``fuse_outputs``);
    ``HandshakeError`` when its family cannot take them."""
    problem = combination_problem(model.family, outputs, model.aggregation)
    if problem is not None:
        raise HandshakeError(problem)
    return _module(model.family).FUSE(
        list(fuse_outputs(outputs).values()),
        model,
        derive_seed(job_seed, "fuse"),
        name="fuse",
    )


def rebuild_fuse(specs: Sequence[OutputSpec], model: ModelConfig) -> keras.Model:
    """A fuse over the outputs ``specs`` (in the fuse's order) whose weights
    will be loaded, not trained (an exported part's)."""
    return _module(model.family).FUSE(list(specs), model, 0, name="fuse")


def described_output(
    party: str, shapes: Sequence[FeatureShape], model: ModelConfig, source: Path
) -> OutputSpec:
    """What a party tells the others its base outputs. The base is built once,
    so that a model that cannot be built (a custom model's missing module or
    function, code that raises, a wrong output width) stops the party before it
    serves, naming its config file ``source``."""
    try:
        base = build_base(party, shapes, model, job_seed=0)
        if model.fuse:
            custom_builder(model, "fuse")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return base.output_spec
