"""The ``engine`` section of a party's config: where its heavy per-row work runs.

A party's per-row work (PSI's hashing and blinding, the encoding of its table's
chunks) runs as tasks of a Ray cluster of its own once its table is large::

    engine:
      address: 10.1.0.5:6379      # a Ray cluster this host is a node of, or
                                  # ray://head:10001 (Ray Client); none: a
                                  # local Ray instance, started when needed
      node_address: 10.1.0.7      # this host's address within that cluster
      min_rows: 1000000           # local instance only: smaller tables stay
                                  # in the party process and its process pool
      cpus: 2                     # local instance only: CPUs it may use
      connect_seconds: 60         # how long start-up waits for the cluster

A cluster named by ``address`` is reached when the party starts, and a party
that cannot reach it does not start. ``splitrec.engine`` runs the tasks.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from splitrec.config.base import ConfigModel, Limited, StrictStr, problem
from splitrec.config.limits import CALL_PORT, Limit, address_problem, count

ENGINE_LIMITS: dict[str, Limit] = {
    "min_rows": count(0, 2**62),
    "cpus": count(1, 4096),
    "connect_seconds": Limit(0.1, 3600.0),
}
RAY_CLIENT = "ray://"


class EngineConfig(ConfigModel):
    """Where a party's per-row work runs: a Ray cluster it names, or a local Ray
    instance for tables of at least ``min_rows`` rows."""

    address: StrictStr | None = Field(
        None,
        description="A Ray cluster of the party's own: host:port of its head "
        "(GCS) when this host is one of its nodes, or ray://host:port (Ray "
        "Client). None: a local instance, started when a table needs it.",
    )
    node_address: StrictStr | None = Field(
        None,
        description="This host's address as a node of the cluster at 'address' "
        "(default: the address Ray finds).",
    )
    min_rows: Limited(int, ENGINE_LIMITS["min_rows"]) = Field(
        1_000_000,
        description="Without 'address': tables of fewer rows are encoded in the "
        "party process and aligned on its process pool; from this many rows on, a "
        "local Ray instance does it (0: always).",
    )
    cpus: Limited(int, ENGINE_LIMITS["cpus"]) | None = Field(
        None, description="The CPUs a local instance uses (default: all)."
    )
    connect_seconds: Limited(float, ENGINE_LIMITS["connect_seconds"]) = Field(
        60.0,
        description="How long, in seconds, the party waits at start-up for the "
        "cluster at 'address' before it gives up.",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = address_problem(value.removeprefix(RAY_CLIENT), CALL_PORT)
        if found is None and not value.rpartition(":")[2].isdigit():
            found = f"must end in a port number, got {value!r}"
        if found is not None:
            raise problem("", f"{found} (a Ray address: host:port or ray://host:port)")
        return value

    @field_validator("node_address")
    @classmethod
    def _node(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value.count(":") == 1):
            raise problem("", f"must be a host address without a port, got {value!r}")
        return value

    @property
    def named(self) -> bool:
        """Whether the party's work goes to a cluster it names."""
        return self.address is not None


LOCAL = EngineConfig()
