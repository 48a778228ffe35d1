"""What a model family is: the seams every family plugs into.

A family builds a party's base model (its features → ``[B, width]``, the parts of
that output named in an ``OutputSpec``) and, at the label party, the fuse model
(every party's base output, in the job's order → one logit per row). It says
which families' base outputs its fuse can take and what else those outputs must
agree on.

A family is declared here, without TensorFlow (the coordinator and the config
reader use the declaration), and built by its own module, which names two Keras
model classes:

    BASE(shapes, model, output, seed, name=...)
        the party's input dict → ``[B, output.width]``; it keeps ``shapes``
        and its ``output_spec``;
    FUSE(specs, model, seed, name=...)
        the list of every party's base output → logits ``[B, model.tasks]``
        (``[B, 1]`` unless the family predicts several tasks); it keeps
        ``specs``. A fuse that takes outputs whole applies ``model.aggregation``
        first (``splitrec.models.layers.aggregate``).

Adding a family is that module plus one ``Family`` in ``splitrec.models.registry``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

# Every family reads the config layer's keys unless it declares its own.
from splitrec.config.families import BASE_KEYS, FUSE_KEYS

if TYPE_CHECKING:
    from splitrec.config.jobspec import OutputSpec
    from splitrec.config.model import ModelConfig

Parts = tuple[tuple[str, int], ...]


def no_problem(outputs: Mapping[str, OutputSpec]) -> str | None:
    return None


@dataclass(frozen=True)
class Family:
    """One model family's declaration.

    - ``module``: where its ``BASE`` and ``FUSE`` classes live.
    - ``parts(model)``: the named parts of a base's output, in order.
    - ``fuse_accepts``: the families whose base outputs its fuse can take (None:
      every family's, each output taken whole).
    - ``fuse_reads``: the parts its fuse reads from every base output (none: it
      takes each output whole, after any ``aggregation``; a fuse that reads
      parts combines them its own way and takes only ``concat``).
    - ``outputs_problem(outputs)``: what else the parties' outputs must agree on,
      by party name (None when they do).
    - ``base_keys``, ``fuse_keys``: its config keys.
    - ``multi_task``: its fuse predicts several labels at once (one logit each).
    """

    name: str
    module: str
    parts: Callable[[ModelConfig], Parts]
    fuse_accepts: frozenset[str] | None = None
    fuse_reads: tuple[str, ...] = ()
    outputs_problem: Callable[[Mapping[str, OutputSpec]], str | None] = no_problem
    base_keys: tuple[str, ...] = BASE_KEYS
    fuse_keys: tuple[str, ...] = FUSE_KEYS
    multi_task: bool = False
