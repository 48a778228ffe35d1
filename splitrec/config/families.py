"""The model families' config rules: names, the ``model`` keys each reads and
what its fuse can do, without TensorFlow or builders.

The config reader checks a party's ``model`` section by these rules;
``splitrec.models.registry`` declares each family's builders on top of them.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FAMILY = "deepfm"

# The config keys every family reads: for a party's base (``model`` section) and,
# in addition at the label party, for the fuse.
BASE_KEYS = ("family", "embedding_dim", "deep_units")
FUSE_KEYS = ("fuse_units", "aggregation")

# How a fuse that takes base outputs whole combines them: side by side, or their
# element-wise sum or mean (equal widths only).
AGGREGATIONS = ("concat", "sum", "average")


@dataclass(frozen=True)
class FamilyRules:
    """What a family's config may hold.

    - ``base_keys``, ``fuse_keys``: the ``model`` keys its base and (at the
      label party) its fuse read.
    - ``reads_parts``: its fuse reads named parts of every base output and
      combines them its own way, so it takes them only side by side (concat).
    - ``multi_task``: its fuse predicts several labels at once.
    """

    name: str
    base_keys: tuple[str, ...] = BASE_KEYS
    fuse_keys: tuple[str, ...] = FUSE_KEYS
    reads_parts: bool = False
    multi_task: bool = False


FAMILY_RULES: dict[str, FamilyRules] = {
    rules.name: rules
    for rules in (
        FamilyRules("deepfm", reads_parts=True),
        FamilyRules("wide_deep", reads_parts=True),
        FamilyRules("dnn"),
        FamilyRules(
            "bst", base_keys=BASE_KEYS + ("attention_heads", "transformer_blocks")
        ),
        FamilyRules(
            "mmoe",
            fuse_keys=("experts", "expert_units", "tower_units", "aggregation"),
            multi_task=True,
        ),
        FamilyRules(
            "custom",
            base_keys=("family", "base", "output_width", "code"),
            fuse_keys=("fuse", "aggregation"),
        ),
    )
}


def family_problem(name: str) -> str | None:
    """Why ``name`` is not a model family (None when it is one)."""
    if name in FAMILY_RULES:
        return None
    return f"unknown model family {name!r}; use one of {sorted(FAMILY_RULES)}"


def tasks_problem(label_family: str, tasks: int) -> str | None:
    """Why a fuse of ``label_family`` cannot predict ``tasks`` labels (None
    when it can)."""
    if tasks <= 1 or FAMILY_RULES[label_family].multi_task:
        return None
    several = sorted(f.name for f in FAMILY_RULES.values() if f.multi_task)
    return (
        f"a {label_family} fuse predicts one label, but this party lists {tasks} "
        f"(labels); use family {' or '.join(several)} for several tasks, or keep "
        "one label"
    )


def key_families(key: str) -> list[str]:
    """The families that read config key ``key``."""
    return sorted(
        f.name for f in FAMILY_RULES.values() if key in f.base_keys + f.fuse_keys
    )


def aggregation_problem(label_family: str, aggregation: str) -> str | None:
    """Why a fuse of ``label_family`` cannot combine its inputs by
    ``aggregation`` (None when it can)."""
    if aggregation not in AGGREGATIONS:
        return f"unknown aggregation {aggregation!r}; use one of {list(AGGREGATIONS)}"
    if aggregation != "concat" and FAMILY_RULES[label_family].reads_parts:
        return (
            f"a {label_family} fuse combines the parts of every base output its "
            f"own way and takes them only side by side (concat), not as a "
            f"{aggregation}; use family dnn or custom for {aggregation}"
        )
    return None
