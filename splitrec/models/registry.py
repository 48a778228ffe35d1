"""Every model family by name, and the one check of which bases a fuse can take.

The declarations hold no TensorFlow: the config reader and the coordinator's
handshake use them; ``splitrec.models.build`` imports a family's module only where
a model is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from splitrec.config.families import (
    DEFAULT_FAMILY,
    FAMILY_RULES,
    aggregation_problem,
    family_problem,
    key_families,
    tasks_problem,
)
from splitrec.models.api import Family, Parts

if TYPE_CHECKING:
    from splitrec.config.jobspec import OutputSpec
    from splitrec.config.model import ModelConfig
    from splitrec.models.features import FeatureShape

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "aggregation_problem",
    "combination_problem",
    "family_problem",
    "key_families",
    "output_spec",
    "tasks_problem",
]


def _deepfm_parts(model: ModelConfig) -> Parts:
    return (
        ("deep", model.deep_units[-1]),
        ("embedding_sum", model.embedding_dim),
        ("square_sum", 1),
        ("first_order", 1),
    )


def _one_embedding_dim(outputs: Mapping[str, OutputSpec]) -> str | None:
    dims = {name: spec.size("embedding_sum") for name, spec in outputs.items()}
    if len(set(dims.values())) > 1:
        return (
            f"output shapes differ: embedding_dim per party {dims}; the FM term "
            "needs one embedding_dim at every party (model.embedding_dim in each "
            "party config)"
        )
    return None


def _wide_deep_parts(model: ModelConfig) -> Parts:
    return (("deep", model.deep_units[-1]), ("first_order", 1))


def _dnn_parts(model: ModelConfig) -> Parts:
    return (("deep", model.deep_units[-1]),)


def _custom_parts(model: ModelConfig) -> Parts:
    return (("out", model.output_width),)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "deepfm",
            "splitrec.models.deepfm",
            _deepfm_parts,
            fuse_accepts=frozenset({"deepfm"}),
            fuse_reads=("deep", "embedding_sum", "square_sum", "first_order"),
            outputs_problem=_one_embedding_dim,
        ),
        Family(
            "wide_deep",
            "splitrec.models.wide_deep",
            _wide_deep_parts,
            fuse_accepts=frozenset({"wide_deep"}),
            fuse_reads=("deep", "first_order"),
        ),
        Family(
            "dnn",
            "splitrec.models.dnn",
            _dnn_parts,
        ),
        Family(
            "bst",
            "splitrec.models.bst",
            _dnn_parts,  # BST's base outputs its dense stack, as a DNN's
            base_keys=FAMILY_RULES["bst"].base_keys,
        ),
        Family(
            "mmoe",
            "splitrec.models.mmoe",
            _dnn_parts,  # MMoE's bases are DNN bases
            fuse_keys=FAMILY_RULES["mmoe"].fuse_keys,
            multi_task=True,
        ),
        Family(
            "custom",
            "splitrec.models.custom",
            _custom_parts,
            base_keys=FAMILY_RULES["custom"].base_keys,
            fuse_keys=FAMILY_RULES["custom"].fuse_keys,
        ),
    )
}


def _widths_problem(aggregation: str, outputs: Mapping[str, OutputSpec]) -> str | None:
    widths = {name: spec.width for name, spec in outputs.items()}
    if aggregation == "concat" or len(set(widths.values())) <= 1:
        return None
    return (
        f"aggregation {aggregation} combines the base outputs element by element, but "
        f"their widths differ: {widths}; give every party's base the same output "
        "width (the last of model.deep_units, or model.output_width)"
    )


def aggregated_widths(aggregation: str, widths: Sequence[int]) -> list[int]:
    """The widths of a fuse's inputs after ``aggregation`` of base outputs of
    ``widths`` (equal widths, unless concat)."""
    return list(widths) if aggregation == "concat" else list(widths[:1])


def combination_problem(
    label_family: str, outputs: Mapping[str, OutputSpec], aggregation: str = "concat"
) -> str | None:
    """Why the label party's fuse (of ``label_family``, combining its inputs by
    ``aggregation``) cannot take these base outputs, by party name, in the job's
    order (None when it can).

    The one compatibility check: the coordinator's handshake, every party's
    PrepareJob and the fuse's construction all call it.
    """
    problem = family_problem(label_family)
    if problem is not None:
        return f"the label party's {problem}"
    problem = aggregation_problem(label_family, aggregation)
    if problem is not None:
        return f"the label party's {problem}"
    fuse = FAMILIES[label_family]
    outputs = fuse_outputs(outputs)
    for name, spec in outputs.items():
        problem = family_problem(spec.family)
        if problem is not None:
            return f"party {name}'s base: {problem}"
        if fuse.fuse_accepts is not None and spec.family not in fuse.fuse_accepts:
            return (
                f"party {name}'s base is of model family {spec.family!r}, which a "
                f"{label_family} fuse cannot take (it takes "
                f"{sorted(fuse.fuse_accepts)}); set model.family in {name}'s "
                "config to one of those"
            )
        missing = [part for part in fuse.fuse_reads if spec.size(part) == 0]
        if missing:
            return (
                f"party {name}'s {spec.family} output has no part {missing[0]!r}, "
                f"which a {label_family} fuse reads (its parts: {spec})"
            )
    return _widths_problem(aggregation, outputs) or fuse.outputs_problem(outputs)


def _described_input(shape: FeatureShape) -> list:
    """A feature's part of the structure digest: name, size, encoding, and what
    else a sequence (length, shared table) or a number (scaling) has."""
    extra = [shape.length, shape.shares] if shape.length else []
    extra += [shape.scale] if shape.scale else []
    return [shape.name, shape.size, shape.encoding, *extra]


def structure_digest(shapes: Sequence[FeatureShape], model: ModelConfig) -> str:
    """A digest of a base model's structure: its family, settings and inputs."""
    described = {
        "model": model.model_dump(),
        "inputs": [_described_input(s) for s in shapes],
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def output_spec(model: ModelConfig, shapes: Sequence[FeatureShape]) -> OutputSpec:
    """What a party's base outputs (see ``OutputSpec``); no parts for a label
    party that holds no features."""
    from splitrec.config.jobspec import (
        OutputSpec,  # splitrec.config.jobspec imports splitrec.config.party
    )

    return OutputSpec(
        family=model.family,
        parts=FAMILIES[model.family].parts(model) if shapes else (),
        structure=structure_digest(shapes, model),
    )


def fuse_outputs(outputs: Mapping[str, OutputSpec]) -> dict[str, OutputSpec]:
    """The base outputs a fuse takes: all but an empty one (a label party that
    holds labels alone has no base output)."""
    return {name: spec for name, spec in outputs.items() if spec.width}


def combined_structure(outputs: Sequence[OutputSpec]) -> str:
    """One digest of several bases' structures and output layouts (the label
    party's base and fuse follow every party's)."""
    text = json.dumps([[o.structure, str(o)] for o in outputs])
    return hashlib.sha256(text.encode()).hexdigest()[:32]
