"""A party's exported part as one Keras model file, preprocessing included.

``part.keras`` holds a ``PartModel``: it takes the party's raw column values
(strings, one input per used column, named as in the SavedModel's signature;
at the label party also each feature party's hidden tensor) and returns the
hidden tensor (a feature party) or the scores (the label party). Its config
carries everything needed to build it again: the fitted features
(vocabularies, hash bins, sequence and numeric settings), the model settings,
the output layouts the fuse takes and the tasks; its weights include the
numeric features' scaling statistics. ``keras.models.load_model`` reads it back
once this module is imported (the class is registered under ``splitrec``).

A ``custom`` family's part is built by the user's own code, which the file
cannot carry: such parts are exported as a SavedModel only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from splitrec.common.metrics import Task
from splitrec.config.features import FeatureConfig
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base, rebuild_fuse
from splitrec.models.features import feature_shape
from splitrec.models.objective import Objective
from splitrec.models.raw_columns import RawColumns
from splitrec.models.serving import BaseServing, FuseServing, hidden_input, input_names
from splitrec.models.steps import base_hidden, fused_logits
from splitrec.privacy.mid import Bottleneck

PART_FILE = "part.keras"


def feature_from_dict(found: Mapping[str, Any]) -> FeatureConfig:
    """A fitted feature as ``model_dump`` wrote it (JSON lists back to
    tuples)."""
    return FeatureConfig(**{**found, "vocabulary": tuple(found["vocabulary"])})


def _model_dict(model: ModelConfig) -> dict:
    found = model.model_dump()
    found["code"] = None if model.code is None else str(model.code)
    return found


def _model_from_dict(found: Mapping[str, Any]) -> ModelConfig:
    """The model config a part was exported with. Settings at their defaults
    are left to the defaults: a feature party's empty ``fuse_units`` is the
    default, not a list a label party could write."""
    fields = ModelConfig.model_fields
    values = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in found.items()
    }
    values = {
        key: value
        for key, value in values.items()
        if key not in fields or value != fields[key].default
    }
    if values.get("code") is not None:
        values["code"] = Path(values["code"])
    return ModelConfig(**values)


def _spec_dict(spec: OutputSpec) -> dict:
    return {
        "family": spec.family,
        "parts": [list(p) for p in spec.parts],
        "structure": spec.structure,
    }


def _spec_from_dict(found: Mapping[str, Any]) -> OutputSpec:
    parts = tuple((name, int(size)) for name, size in found["parts"])
    return OutputSpec(found["family"], parts, found["structure"])


def part_description(
    party: str, serving: BaseServing | FuseServing, model: ModelConfig
) -> dict:
    """What ``PartModel`` is built from, as plain JSON values."""
    description: dict[str, Any] = {
        "party": party,
        "features": [f.model_dump() for f in serving.raw.features],
        "model": _model_dict(model),
    }
    if isinstance(serving, FuseServing):
        description.update(
            fuse_specs=[_spec_dict(s) for s in serving.fuse.specs],
            peers=[list(p) for p in serving.peers],
            tasks=[[t.name, t.weight] for t in serving.objective.tasks],
            own_index=serving.own_index,
            summed=serving.summed,
        )
    else:
        description["clip_norm"] = serving.clip_norm
        if serving.bottleneck is not None:
            description["mid_dim"] = serving.bottleneck.dim
    return description


@keras.saving.register_keras_serializable(package="splitrec", name="PartModel")
class PartModel(keras.Model):
    """A party's part over raw column values (see the module docstring)."""

    def __init__(self, part: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.part = part
        features = tuple(feature_from_dict(f) for f in part["features"])
        self.raw = RawColumns(features)
        self.columns = input_names(self.raw.columns)
        model = _model_from_dict(part["model"])
        fitted = {f.name: f for f in features}
        shapes = [feature_shape(f, fitted) for f in features]
        self.base = build_base(part["party"], shapes, model, job_seed=0)
        self.peers = [(str(p), int(w)) for p, w in part.get("peers", ())]
        self.clip_norm = float(part.get("clip_norm", 0.0))
        self.bottleneck = None
        if "mid_dim" in part:
            self.bottleneck = Bottleneck(
                self.base.output_spec.width, int(part["mid_dim"]), name="mid"
            )
            self.bottleneck.build()
        self.fuse = None
        if "fuse_specs" in part:
            specs = [_spec_from_dict(s) for s in part["fuse_specs"]]
            self.fuse = rebuild_fuse(specs, model)
            self.objective = Objective([Task(n, float(w)) for n, w in part["tasks"]])
            self.own_index = part["own_index"]
            self.summed = bool(part["summed"])
        self(self._empty())  # every weight exists before any is loaded

    def _empty(self) -> dict[str, tf.Tensor]:
        inputs = {name: tf.zeros([0], tf.string) for name in self.columns.values()}
        for party, width in self.peers:
            inputs[hidden_input(party)] = tf.zeros([0, width], tf.float32)
        return inputs

    @property
    def input_names(self) -> list[str]:
        """The names ``call`` takes: one per raw column, then each peer's."""
        return list(self._empty())

    def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        encoded = self.raw({c: inputs[name] for c, name in self.columns.items()})
        if self.fuse is None:
            return base_hidden(self.base, encoded, self.clip_norm, self.bottleneck)
        hiddens = [inputs[hidden_input(p)] for p, _ in self.peers]
        return tf.sigmoid(fused_logits(self, encoded, hiddens))

    def get_config(self) -> dict:
        return {"name": self.name, "part": self.part}

    @classmethod
    def from_config(cls, config: dict) -> PartModel:
        return cls(**config)


def save_part_file(
    party: str,
    serving: BaseServing | FuseServing,
    model: ModelConfig,
    path: Path,
) -> None:
    """Writes ``serving``'s part to ``path`` as a ``PartModel``."""
    part = PartModel(part_description(party, serving, model), name=f"{party}_part")
    sources: Sequence[keras.Model] = [serving.base]
    targets: Sequence[keras.Model] = [part.base]
    if isinstance(serving, FuseServing):
        sources, targets = [*sources, serving.fuse], [*targets, part.fuse]
    elif serving.bottleneck is not None:
        sources, targets = [*sources, serving.bottleneck], [*targets, part.bottleneck]
    for source, target in zip(sources, targets, strict=True):
        target.set_weights(source.get_weights())
    part.save(str(path))
