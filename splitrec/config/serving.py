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

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from splitrec.common.names import name_problem
from splitrec.config.limits import Limit, count, seconds
from splitrec.config.reader import ConfigReader

SERVING_LIMITS: dict[str, Limit] = {
    "entries": count(0, 100_000_000),
    "seconds": seconds(),
    "max_rows": count(1, 100_000),
    "reload_seconds": Limit(0.05, 3600.0),
}
# The longest key a request may carry (bytes of text).
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class ServingConfig:
    job: str
    version: str
    table: Path
    key: str
    clients: tuple[str, ...] = ()
    cache_entries: int = 100_000
    cache_seconds: float = 300.0
    max_rows: int = 1000
    reload_seconds: float = 2.0
    label_party: str = ""
    push: bool = False


# The settings a section leaves out.
_DEFAULT = ServingConfig(job="", version="", table=Path(), key="")


def _safe(reader: ConfigReader, key: str) -> str:
    value = reader.require(key, str)
    problem = name_problem(value)
    if problem is not None:
        raise reader.error(key, problem)
    return value


def read_serving(
    reader: ConfigReader, base: Path, peers: tuple[str, ...], label: bool
) -> ServingConfig:
    """Reads ``serving``; ``peers`` are the party's peer names, ``label``
    whether the party holds the labels (and so serves ``Scoring``)."""
    model = reader.section("model")
    job, version = _safe(model, "job"), _safe(model, "version")
    model.finish()
    table = reader.section("table")
    path = (base / table.require("path", str)).resolve()
    key = table.require("key", str)
    table.finish()
    cache = (
        reader.section("cache")
        if reader.has("cache")
        else ConfigReader({}, reader.source, "serving.cache.")
    )
    limits, default = SERVING_LIMITS, _DEFAULT
    config = ServingConfig(
        job=job,
        version=version,
        table=path,
        key=key,
        clients=reader.string_list("clients", ()),
        cache_entries=cache.number(
            "entries", int, default.cache_entries, limits["entries"]
        ),
        cache_seconds=cache.number(
            "seconds", float, default.cache_seconds, limits["seconds"]
        ),
        max_rows=reader.number("max_rows", int, default.max_rows, limits["max_rows"]),
        reload_seconds=reader.number(
            "reload_seconds", float, default.reload_seconds, limits["reload_seconds"]
        ),
        label_party=reader.optional("label_party", str, ""),
        push=reader.optional("push", bool, False),
    )
    cache.finish()
    for key in ("label_party", "push"):
        if label and reader.has(key):
            raise reader.error(key, "only a feature party sets it")
    if not label:
        for key in ("clients", "cache", "max_rows"):
            if reader.has(key):
                raise reader.error(
                    key, "only the label party serves Scoring; remove it here"
                )
        named = config.label_party or (peers[0] if len(peers) == 1 else "")
        if named not in peers:
            raise reader.error(
                "label_party",
                "name the label party this party answers, one of its peers "
                f"{list(peers)}",
            )
        config = dataclasses.replace(config, label_party=named)
    elif not config.clients:
        raise reader.error(
            "clients",
            "list the client identities that may call Scoring (the names in their "
            "certificates)",
        )
    reader.finish()
    return config
