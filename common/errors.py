"""Domain errors shared by the party server and the coordinator.

Each error carries a message that says what was wrong, where, and what to do.
Servicers map them to gRPC status codes in one place (``party_server.status``).
"""

from __future__ import annotations


class SplitRecError(Exception):
    """Base of every error the project raises on purpose.

    ``permanent`` errors say that the same request will fail again however often
    it is retried (a setting, the data, a full disk): a party marks its refusal
    so, and the coordinator then ends the job instead of recovering.
    """

    permanent = False


class ConfigError(SplitRecError):
    """A config file or flag is missing, unknown, or of the wrong type."""

    permanent = True


class DataError(SplitRecError):
    """A party's data file cannot be used as configured."""

    permanent = True


class ModelIntegrityError(DataError):
    """An exported model part's files are not those its export recorded (a
    file changed, is missing or was added, or the part comes from another
    export)."""


class InvalidMessageError(SplitRecError):
    """A message failed validation (shape, dtype, size, finite values)."""

    permanent = True


class UnknownJobError(SplitRecError):
    """A request names a job this party does not hold."""


class JobStateError(SplitRecError):
    """A request does not fit the job's current state (wrong step, wrong phase)."""


class PeerError(SplitRecError):
    """A peer party failed, was unreachable, or sent something unusable.

    ``code`` is the gRPC status name and ``rpc`` the method when the error came
    from a call; ``permanent`` when the party marked its refusal as one that no
    retry fixes (the coordinator decides by them whether recovery can help).
    """

    def __init__(
        self, message: str, code: str = "", rpc: str = "", permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.rpc = rpc
        self.permanent = permanent


class HandshakeError(SplitRecError):
    """The parties of a job do not agree on identity, version, rows or shapes."""

    permanent = True


class NotAllowedError(SplitRecError):
    """The caller is not one this party is configured to serve."""

    permanent = True


class JobFailedError(SplitRecError):
    """A job could not go on; the message names each party's reason.

    ``fatal`` marks failures that recovery from a checkpoint cannot fix.
    """

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class CheckpointLostError(JobStateError):
    """A committed checkpoint file is missing or no longer has its digest."""


class CheckpointMismatchError(JobStateError):
    """A checkpoint does not fit the job's model (other shapes or position)."""

    permanent = True


class StorageError(SplitRecError):
    """A file could not be written (read-only folder, a file in a folder's place)."""

    permanent = True


class DiskFullError(StorageError):
    """A file could not be written: no space left (or the quota is used up)."""


class EngineError(SplitRecError):
    """The party's compute engine (its Ray cluster) cannot be reached, or a
    task on it failed for a reason other than the data."""


class OwnershipError(SplitRecError):
    """Another coordinator drives the job (or took it over)."""

    permanent = True


class VersionTakenError(SplitRecError):
    """A model version already holds another model."""

    permanent = True


class NotServingError(SplitRecError):
    """Online scoring is not ready: no model version or entity table loaded."""


class RequestTooLargeError(SplitRecError):
    """A request asks for more than the service's configured limits."""

    permanent = True
