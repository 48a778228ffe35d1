"""Models users write themselves: ``family: custom``.

A party's config names its base builder as ``base: "module:function"``, the
label party's also its fuse builder as ``fuse: "module:function"``; the module
is a Python file under the folder ``code`` (relative to the config file; ``a.b``
is ``code/a/b.py``). Only the party that owns the config imports it; the other
parties and the coordinator learn its family, output width and a digest of its
structure (variable paths and shapes), never the code.

    base(inputs, width, seed) -> keras.Model
        ``inputs``: the party's input layout, one ``FeatureShape`` (name,
        encoding, size) per feature; the model is called with a dict of feature
        name → tensor (``index``: int32 [B]; ``multi_hot``: float32 [B, size];
        ``sequence``: int32 [B, length], -1 where there is no token;
        ``numeric``: float32 [B, 1 or 2], the raw number (missing ones filled)
        and, with ``indicator``, 1.0 where it was missing) and returns float32
        [B, width].
    fuse(widths, seed) -> keras.Model
        called with the list of every party's base output (in the job's order,
        the label party's own included), returns logits [B, 1]. With
        ``aggregation: sum`` or ``average`` the list holds one tensor, the
        outputs' sum or mean, and ``widths`` one width.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import tensorflow as tf

from splitrec.common.errors import ConfigError
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.determinism import unordered_sums
from splitrec.models.features import FeatureShape, columns_by_feature
from splitrec.models.layers import aggregate
from splitrec.models.registry import aggregated_widths

logger = logging.getLogger(__name__)


def _module(code: Path, name: str, key: str, reference: str) -> object:
    path = code.joinpath(*name.split(".")).with_suffix(".py")
    if not path.is_file():
        raise ConfigError(
            f"model.{key} {reference!r}: no module {name!r} at {path} (the module is "
            "looked up under model.code, relative to the config file)"
        )
    unique = "splitrec_custom_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is reported
        raise ConfigError(
            f"model.{key} {reference!r}: importing {path} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    sys.modules[unique] = module
    return module


def builder(model: ModelConfig, key: str) -> Callable:
    """The function ``model.base`` or ``model.fuse`` names."""
    reference = getattr(model, key)
    name, _, function = reference.partition(":")
    assert model.code is not None
    found = getattr(_module(model.code, name, key, reference), function, None)
    if not callable(found):
        raise ConfigError(
            f"model.{key} {reference!r}: module {name!r} has no function {function!r}"
        )
    return found


def _built(
    make: Callable[[], object],
    probe: Callable[[keras.Model], tf.Tensor],
    key: str,
    reference: str,
    scope: str,
) -> tuple[keras.Model, tf.Tensor]:
    """Runs a user's builder, and ``probe`` on what it built (which creates any
    variable it did not), in a thread of its own (so that Keras names the layers
    as in any other process: ``dense``, ``dense_1``, ...) under the name scope
    ``scope``; any failure is reported as the config's."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            with keras.name_scope(scope):
                built = make()
                if not isinstance(built, keras.Model):
                    raise TypeError(
                        f"it returned {type(built).__name__}, not a keras.Model"
                    )
                result["output"] = probe(built)
                result["model"] = built
        except Exception as exc:  # the user's code: any failure is reported
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"build-{scope}")
    thread.start()
    thread.join()
    if "error" in result:
        exc = result["error"]
        raise ConfigError(
            f"model.{key} {reference!r} raised {type(exc).__name__}: {exc}"
        ) from None
    return result["model"], result["output"]


def _empty_inputs(shapes: Sequence[FeatureShape]) -> dict[str, tf.Tensor]:
    indices = tf.zeros([0, sum(s.index_columns for s in shapes)], tf.int32)
    dense = tf.zeros([0, sum(s.dense_columns for s in shapes)], tf.float32)
    numeric = tf.zeros([0, sum(s.numeric_columns for s in shapes)], tf.float32)
    return columns_by_feature(shapes, indices, dense, numeric)


def _warn_of_unordered_sums(
    compute: Callable[[], object], key: str, reference: str
) -> None:
    found = unordered_sums(compute)
    if found:
        logger.warning(
            "model.%s %r adds three or more tensors in one tf.add_n (%s): the "
            "order of such a sum follows thread scheduling, so on a loaded "
            "machine a recovered run can end a few ulps away from an "
            "uninterrupted one; add them with "
            "splitrec.models.determinism.ordered_sum instead",
            key,
            reference,
            ", ".join(found[:3]),
        )


def structure_of(model: keras.Model) -> str:
    """A digest of a built model's variable paths and shapes."""
    described = [[v.path, list(v.shape)] for v in model.variables]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:32]


class CustomBase(keras.Model):
    """A user's base model, checked to output ``output.width`` columns."""

    def __init__(
        self,
        shapes: Sequence[FeatureShape],
        model: ModelConfig,
        output: OutputSpec,
        seed: int,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.shapes = tuple(shapes)
        make = builder(model, "base")
        self.inner, hidden = _built(
            lambda: make(self.shapes, model.output_width, seed),
            lambda built: built(_empty_inputs(self.shapes)),
            "base",
            model.base,
            self.name,
        )
        if tuple(hidden.shape) != (0, model.output_width):
            raise ConfigError(
                f"model.base {model.base!r} builds a model whose output has shape "
                f"{tuple(hidden.shape)} for an empty batch, not (0, "
                f"{model.output_width}) as model.output_width declares"
            )
        self.output_spec = dataclasses.replace(output, structure=structure_of(self))
        _warn_of_unordered_sums(
            lambda: self.inner(_empty_inputs(self.shapes)), "base", model.base
        )

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        return self.inner(inputs)


class CustomFuse(keras.Model):
    """A user's fuse model, checked to output one logit per row."""

    def __init__(
        self, specs: Sequence[OutputSpec], model: ModelConfig, seed: int, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.specs = tuple(specs)
        self.aggregation = model.aggregation
        widths = aggregated_widths(model.aggregation, [s.width for s in self.specs])
        make = builder(model, "fuse")
        self.inner, logits = _built(
            lambda: make(list(widths), seed),
            lambda built: built([tf.zeros([0, w]) for w in widths]),
            "fuse",
            model.fuse,
            self.name,
        )
        if tuple(logits.shape) != (0, 1):
            raise ConfigError(
                f"model.fuse {model.fuse!r} builds a model whose output has shape "
                f"{tuple(logits.shape)} for an empty batch, not (0, 1): one logit "
                "per row"
            )
        _warn_of_unordered_sums(
            lambda: self.inner([tf.zeros([0, w]) for w in widths]), "fuse", model.fuse
        )

    def call(self, hiddens: Sequence[tf.Tensor]) -> tf.Tensor:
        return self.inner(aggregate(hiddens, self.aggregation))


BASE, FUSE = CustomBase, CustomFuse
