"""SplitRec: split learning (vertical federated learning) for recommendation.

Each organisation runs one party server (``splitrec.party_server``) with its own
columns of the same rows; a coordinator (``splitrec.coordinator``) drives the job.
The packages:

- ``splitrec.v1``: the gRPC contract (stubs generated from ``proto/``);
- ``splitrec.wire``: conversion between its messages and Python values, channels;
- ``splitrec.config``: the party and job configs;
- ``splitrec.models``: model families, feature encoding, training steps;
- ``splitrec.datasets``: MovieLens-1M and UCI Adult, real or generated;
- ``splitrec.privacy``: differential privacy, secure aggregation, PSI, attacks;
- ``splitrec.security``: mutual TLS and development certificates;
- ``splitrec.common``: small shared pieces (atomic files, names, signals, ...);
- ``splitrec.baseline`` and ``splitrec.bench``: the centralized model and the
  benchmarks that compare against it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("splitrec")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
