"""A party's trained part as a TensorFlow SavedModel over raw column values.

Each party exports its own part only. Its serving signature takes the party's
used CSV columns as strings ``[B]`` (one input per column, see
``input_names``) and encodes them with the job's fitted features
(``splitrec.models.raw_columns``):

- a feature party's part returns ``hidden``, what it sends the label party
  (``[B, width]``, through MID's bottleneck at the code's mean and clipped, as
  in the job);
- the label party's part also takes each feature party's hidden tensor
  (``hidden_<party>``, or ``hidden_sum`` when the job summed them securely) and
  returns ``scores``, the sigmoid of each task's logit (``[B]`` for one task,
  ``[B, tasks]`` for several), as the job's prediction pass computes them.

Embedding DP noise is never part of an export: the exported hidden tensor is
the clean one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from splitrec.common.metrics import Task
from splitrec.config.features import FeatureConfig
from splitrec.config.model import ModelConfig
from splitrec.models.objective import Objective
from splitrec.models.raw_columns import RawColumns
from splitrec.models.steps import base_hidden, create_weights, fused_logits
from splitrec.privacy.mid import Bottleneck

SIGNATURE = "serving_default"
SUMMED = "sum"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def input_names(columns: Sequence[str]) -> dict[str, str]:
    """Each column's signature input name: the column with every character
    outside ``[A-Za-z0-9_]`` replaced by ``_``, made unique by a suffix."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        name = _UNSAFE.sub("_", column) or "column"
        if name[0].isdigit():
            name = f"c_{name}"
        unique, count = name, 1
        while unique.lower() in taken:
            count += 1
            unique = f"{name}_{count}"
        taken.add(unique.lower())
        names[column] = unique
    return names


def hidden_input(party: str) -> str:
    """The label party's signature input for a feature party's hidden tensor."""
    return f"hidden_{_UNSAFE.sub('_', party)}"


class _Models:
    """Holds the Keras models out of the SavedModel's object graph: saving a
    subclassed Keras model traces a default signature of its own (over float
    inputs), so the part tracks the models' variables instead."""

    def __init__(self, **models: keras.Model) -> None:
        self.__dict__.update(models)


class _Serving(tf.Module):
    def __init__(
        self,
        features: Sequence[FeatureConfig],
        base: keras.Model,
        model: ModelConfig | None = None,
    ) -> None:
        super().__init__(name="serving")
        # The party's model settings (what a Keras file of the part needs).
        self.model = model
        create_weights(base)
        self.raw = RawColumns(features)
        self.models = _Models(base=base)
        self.weights = list(base.variables)
        self.inputs = input_names(self.raw.columns)

    @property
    def base(self) -> keras.Model:
        return self.models.base

    def _column_specs(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec([None], tf.string, name=n) for n in self.inputs.values()]

    def _encoded(self, columns: Sequence[tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.raw(dict(zip(self.raw.columns, columns, strict=True)))


class BaseServing(_Serving):
    """A feature party's part: raw columns → ``hidden``."""

    def __init__(
        self,
        features: Sequence[FeatureConfig],
        base: keras.Model,
        clip_norm: float = 0.0,
        model: ModelConfig | None = None,
        bottleneck: Bottleneck | None = None,
    ) -> None:
        super().__init__(features, base, model)
        self.clip_norm = clip_norm
        self.models.bottleneck = bottleneck
        if bottleneck is not None:
            self.weights += list(bottleneck.variables)
        self.serve = tf.function(self._serve, input_signature=self._column_specs())

    @property
    def bottleneck(self) -> Bottleneck | None:
        return self.models.bottleneck

    def _serve(self, *columns: tf.Tensor) -> dict[str, tf.Tensor]:
        hidden = base_hidden(
            self.base, self._encoded(columns), self.clip_norm, self.bottleneck
        )
        return {"hidden": hidden}


class FuseServing(_Serving):
    """The label party's part: raw columns and the peers' hidden tensors →
    ``scores``. ``peers``: each feature party's name and width in the job's
    order (one entry named ``SUMMED`` when the job summed them securely)."""

    def __init__(
        self,
        features: Sequence[FeatureConfig],
        base: keras.Model,
        fuse: keras.Model,
        own_index: int | None,
        peers: Sequence[tuple[str, int]],
        tasks: Sequence[Task] = (),
        summed: bool = False,
        model: ModelConfig | None = None,
    ) -> None:
        super().__init__(features, base, model)
        self.models.fuse = fuse
        self.weights += list(fuse.variables)
        self.own_index = own_index
        self.summed = summed
        self.objective = Objective(tasks)
        self.peers = tuple(peers)
        fuse([tf.zeros([0, s.width]) for s in fuse.specs])
        specs = self._column_specs() + [
            tf.TensorSpec([None, width], tf.float32, name=hidden_input(party))
            for party, width in self.peers
        ]
        self.serve = tf.function(self._serve, input_signature=specs)

    @property
    def fuse(self) -> keras.Model:
        return self.models.fuse

    def _serve(self, *values: tf.Tensor) -> dict[str, tf.Tensor]:
        count = len(self.inputs)
        inputs = self._encoded(values[:count])
        return {"scores": tf.sigmoid(fused_logits(self, inputs, values[count:]))}


def save_serving(module: BaseServing | FuseServing, folder: Path) -> None:
    """Writes the SavedModel with its one signature (``SIGNATURE``)."""
    tf.saved_model.save(module, str(folder), signatures={SIGNATURE: module.serve})
