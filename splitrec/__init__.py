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
  benchmarks that compare against it;
- ``splitrec.api``: the Python API (``Federation``, ``History``, callbacks),
  also reachable from here: ``splitrec.Federation``.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("splitrec")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

from splitrec.common.errors import (  # noqa: E402
    ConfigError,
    JobFailedError,
    PeerError,
    SplitRecError,
)

# The Python API, imported when first used (the command line needs none of it).
_API = (
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "Export",
    "Federation",
    "History",
    "LambdaCallback",
    "ModelCheckpoint",
    "Prediction",
    "ScoringClient",
    "TensorBoard",
    "custom_model",
)


# The subpackages, imported when first named (``splitrec.config.JobConfig``).
_PACKAGES = ("api", "config", "datasets", "models", "privacy", "security", "wire")


def __getattr__(name: str) -> Any:
    if name in _API:
        import splitrec.api

        return getattr(splitrec.api, name)
    if name in _PACKAGES:
        import importlib

        return importlib.import_module(f"splitrec.{name}")
    raise AttributeError(f"module 'splitrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_PACKAGES])


__all__ = [
    "ConfigError",
    "JobFailedError",
    "PeerError",
    "SplitRecError",
    "__version__",
    *_API,
]
