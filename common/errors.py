"""Domain errors shared by the party server and the coordinator.

Each error carries a message that says what was wrong, where, and what to do.
Servicers map them to gRPC status codes in one place (``party_server.status``).
"""

from __future__ import annotations


class SplitRecError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(SplitRecError):
    """A config file or flag is missing, unknown, or of the wrong type."""


class DataError(SplitRecError):
    """A party's data file cannot be used as configured."""


class InvalidMessageError(SplitRecError):
    """A message failed validation (shape, dtype, size, finite values)."""


class UnknownJobError(SplitRecError):
    """A request names a job this party does not hold."""


class JobStateError(SplitRecError):
    """A request does not fit the job's current state (wrong step, wrong phase)."""


class PeerError(SplitRecError):
    """A peer party failed, was unreachable, or sent something unusable."""


class HandshakeError(SplitRecError):
    """The parties of a job do not agree on identity, version, rows or shapes."""


class NotAllowedError(SplitRecError):
    """The caller is not one this party is configured to serve."""


class JobFailedError(SplitRecError):
    """A job could not go on; the message names each party's reason."""
