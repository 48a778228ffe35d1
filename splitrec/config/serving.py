"""The ``serving`` section of a party's config: which exported model version
the party serves online, its entity table, and (at the label party) who may
call the ``Scoring`` service and how feature outputs are cached.

::

    serving:
      model: {job: deepfm-ml1m, version: epoch-5}
      table: {path: ../data/users.csv, key: UserID}
      clients: [scorer]             # label party: identities that may call Scoring
      cache: {entries: 100000, seconds: 300}   # label party; entries: 0 = off
      max_rows: 1000                # label party: rows per request
      reload_seconds: 2             # how often the table file is checked
      label_party: bob              # feature party: whom it answers (default:
                                    # its only peer)
      push: false                   # feature party: let the label party fetch
                                    # every entity's output ahead of requests
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from splitrec.common.names import name_problem
from splitrec.config.base import (
    ConfigModel,
    Limited,
    StrictBool,
    StrictInt,
    StrictStr,
    StringList,
    base_folder,
    nested,
    problem,
    resolve,
)
from splitrec.config.limits import Limit, count, seconds

SERVING_LIMITS: dict[str, Limit] = {
    "entries": count(0, 100_000_000),
    "seconds": seconds(),
    "max_rows": count(1, 100_000),
    "reload_seconds": Limit(0.05, 3600.0),
}
# The longest key a request may carry (bytes of text).
MAX_KEY_LENGTH = 256


def _safe(value: str) -> str:
    found = name_problem(value)
    if found is not None:
        raise problem("", found)
    return value


class ServingConfig(ConfigModel):
    """What a party serves online, as the reader keeps it (the file's
    ``serving`` section, see ``ServingSection``)."""

    job: StrictStr
    version: StrictStr
    table: Path
    key: StrictStr
    clients: tuple[StrictStr, ...] = ()
    cache_entries: StrictInt = 100_000
    cache_seconds: float = 300.0
    max_rows: StrictInt = 1000
    reload_seconds: float = 2.0
    label_party: StrictStr = ""
    push: StrictBool = False


class ServedModel(ConfigModel):
    """The exported model version to serve."""

    job: StrictStr = Field(description="The job whose export to serve.")
    version: StrictStr = Field(
        description="The exported model version (e.g. epoch-5) of that job."
    )

    @field_validator("job", "version")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return _safe(value)


class EntityTable(ConfigModel):
    """The party's entity table: one row of its columns per entity."""

    path: Path = Field(
        description="The table's CSV file, relative to the config file's folder; "
        "re-read when it changes."
    )
    key: StrictStr = Field(description="The column that identifies an entity.")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return resolve(base_folder(info), value)
        return value


_DEFAULT = ServingConfig(job="", version="", table=Path(), key="")


class ScoreCache(ConfigModel):
    """The label party's cache of feature parties' outputs."""

    entries: Limited(int, SERVING_LIMITS["entries"]) = Field(
        _DEFAULT.cache_entries,
        description="Outputs kept per feature party (0 turns the cache off).",
    )
    seconds: Limited(float, SERVING_LIMITS["seconds"]) = Field(
        _DEFAULT.cache_seconds,
        description="How long a cached output is used, in seconds.",
    )


class ServingSection(ConfigModel):
    """Online serving: the exported model version a party serves, its entity
    table and, at the label party, who may call Scoring and how outputs are
    cached."""

    model: ServedModel = Field(
        description="The exported model version the party serves: a job and version."
    )
    table: EntityTable = Field(description="The entity table rows are scored from.")
    clients: StringList = Field(
        (),
        description="Label party only: the client identities (names in their "
        "certificates) that may call the Scoring service; at least one.",
    )
    cache: ScoreCache | None = Field(
        None, description="Label party only: the cache of feature parties' outputs."
    )
    max_rows: Limited(int, SERVING_LIMITS["max_rows"]) = Field(
        _DEFAULT.max_rows,
        description="Label party only: the most rows one Scoring request may ask for.",
    )
    reload_seconds: Limited(float, SERVING_LIMITS["reload_seconds"]) = Field(
        _DEFAULT.reload_seconds,
        description="How often, in seconds, the entity table file is checked for "
        "changes.",
    )
    label_party: StrictStr = Field(
        "",
        description="Feature party only: the label party it answers (default: its "
        "only peer).",
    )
    push: StrictBool = Field(
        False,
        description="Feature party only: let the label party fetch every entity's "
        "output ahead of requests.",
    )


def read_serving(
    data: Any, info: ValidationInfo | None, peers: tuple[str, ...], label: bool
) -> ServingConfig:
    """The ``serving`` section (as written, or a ``ServingConfig``); ``peers``
    are the party's peer names, ``label`` whether the party holds the labels
    (and so serves ``Scoring``)."""
    if isinstance(data, ServingConfig):
        return data
    section = nested(ServingSection, data, "serving", info)
    written = set(data)
    for key in ("label_party", "push"):
        if label and key in written:
            raise problem(f"serving.{key}", "only a feature party sets it")
    label_party = section.label_party
    if not label:
        for key in ("clients", "cache", "max_rows"):
            if key in written:
                raise problem(
                    f"serving.{key}",
                    "only the label party serves Scoring; remove it here",
                )
        label_party = label_party or (peers[0] if len(peers) == 1 else "")
        if label_party not in peers:
            raise problem(
                "serving.label_party",
                "name the label party this party answers, one of its peers "
                f"{list(peers)}",
            )
    elif not section.clients:
        raise problem(
            "serving.clients",
            "list the client identities that may call Scoring (the names in their "
            "certificates)",
        )
    cache = section.cache or ScoreCache()
    return ServingConfig(
        job=section.model.job,
        version=section.model.version,
        table=section.table.path,
        key=section.table.key,
        clients=section.clients,
        cache_entries=cache.entries,
        cache_seconds=cache.seconds,
        max_rows=section.max_rows,
        reload_seconds=section.reload_seconds,
        label_party=label_party,
        push=section.push,
    )
