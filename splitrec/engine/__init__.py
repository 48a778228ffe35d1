"""Where a party's per-row work runs.

The work is a function mapped over a stream of chunks (PSI's hashing and
blinding, a table's encoding), results wanted in order and as they come, with
few chunks in flight so that memory stays flat. Three engines do it:

- ``Inline``: in the calling thread (small tables' encoding);
- ``ProcessPool``: worker processes of the party's own (PSI of small tables);
- ``RayEngine``: tasks of a Ray cluster of the party's own, local or named in
  its config (``engine:``), for tables too big for one process or host.

``PartyEngine`` picks one from the party's config and a table's size.
"""

from splitrec.engine.choice import PartyEngine
from splitrec.engine.ordered import Engine, Inline
from splitrec.engine.pool import ProcessPool

__all__ = ["Engine", "Inline", "PartyEngine", "ProcessPool"]
