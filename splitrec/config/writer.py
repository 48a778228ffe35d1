"""A party's config back in its file's layout: what ``Federation.local`` writes
for a party built in Python, so that the party's own process reads it as the
only authority over its data and model, as it reads a file a person wrote.

The layout is the one ``PartyConfig.from_file`` reads: keys a file may not
write (``source``, a label's ``key``, the model's ``tasks``) are left out,
values equal to their defaults are left out, and every path is absolute (the
file may live in another folder than the one the config was built in).
Reading the written file gives the same config (``source`` aside).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from splitrec.common.atomic import write_atomically
from splitrec.config.base import ConfigModel
from splitrec.config.families import FAMILY_RULES
from splitrec.config.model import ModelConfig
from splitrec.config.party import PartyConfig
from splitrec.config.serving import ServingConfig, ServingSection


def _plain(value: Any) -> Any:
    """A value as YAML writes it: sections as mappings, tuples as lists,
    paths as absolute strings."""
    if isinstance(value, BaseModel):
        return section_layout(value)
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def section_layout(model: BaseModel, skip: frozenset[str] = frozenset()) -> dict:
    """A config section as a file writes it: the fields a file may write that
    differ from their defaults, under their file names (``type`` for a
    feature's ``kind``)."""
    derived = model._derived if isinstance(model, ConfigModel) else frozenset()
    layout: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        if name in derived or name in skip:
            continue
        value = getattr(model, name)
        default = _default(field)
        if default is not PydanticUndefined and value == default:
            continue
        layout[field.alias or name] = _plain(value)
    return layout


def _model_layout(model: ModelConfig) -> dict:
    """The model section: the family's own settings only (a model built in
    Python may carry others, which a file may not write); aggregation as a
    mapping when it is secure."""
    rules = FAMILY_RULES[model.family]
    allowed = {"family", *rules.base_keys, *(rules.fuse_keys if model.tasks else ())}
    layout = section_layout(
        model, skip=frozenset(set(type(model).model_fields) - allowed)
    )
    if model.secure_aggregation:
        layout["aggregation"] = {"method": model.aggregation, "secure": True}
    if "fuse_units" in allowed:
        layout["fuse_units"] = list(model.fuse_units)
    if "output_width" in allowed:
        layout["output_width"] = model.output_width
    return layout


def _serving_layout(serving: ServingConfig, label: bool) -> dict:
    section = ServingSection(
        model={"job": serving.job, "version": serving.version},
        table={"path": serving.table, "key": serving.key},
        clients=serving.clients,
        cache={"entries": serving.cache_entries, "seconds": serving.cache_seconds}
        if label
        else None,
        max_rows=serving.max_rows,
        reload_seconds=serving.reload_seconds,
        label_party="" if label else serving.label_party,
        push=serving.push,
    )
    return section_layout(section)


def party_layout(config: PartyConfig) -> dict:
    """``config`` in its file's layout (see the module's doc)."""
    layout = section_layout(
        config, skip=frozenset({"labels", "model", "serving", "tls", "output_dir"})
    )
    layout["output_dir"] = str(config.output_dir.resolve())
    if len(config.labels) == 1 and config.labels[0].key == "label":
        label = config.labels[0]
        layout["label"] = section_layout(label, skip=frozenset({"name", "weight"}))
    elif config.labels:
        layout["labels"] = [
            {"name": label.name, **section_layout(label)} for label in config.labels
        ]
    layout["model"] = _model_layout(config.model)
    # A file must state its TLS, insecure included.
    layout["tls"] = section_layout(config.tls) or {"insecure": True}
    if config.serving is not None:
        layout["serving"] = _serving_layout(config.serving, bool(config.labels))
    return layout


def write_party_config(config: PartyConfig, path: Path) -> Path:
    """Writes ``config`` as a party's YAML file at ``path`` (atomically)."""
    text = yaml.safe_dump(party_layout(config), sort_keys=False, allow_unicode=True)
    write_atomically(path, f"# party {config.party}\n{text}")
    return path
