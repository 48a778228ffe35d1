"""Which failures a recovery from the last checkpoint can fix, and which not.

A party that died, was unreachable or stalled comes back; a job whose settings
or data changed, whose caller is not allowed, or whose disk is full does not
get better by trying again: such a failure ends the job at once with its
message instead of using up every recovery attempt.
"""

from __future__ import annotations

from common.errors import JobFailedError, PeerError

# Status codes that no retry fixes, whatever the call.
_FATAL_CODES = frozenset(
    {
        "INVALID_ARGUMENT",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "UNIMPLEMENTED",
        "OUT_OF_RANGE",
    }
)
# Calls whose FAILED_PRECONDITION means the parties do not fit the job (a
# changed setting, a checkpoint that does not fit the model, another
# coordinator holding the job); during training it can also mean a pass is
# still running, which a recovery does fix.
_FATAL_PRECONDITION_CALLS = ("PrepareJob", "RestoreCheckpoint", "HoldJob")


def is_fatal(error: Exception) -> bool:
    """True when recovering from a checkpoint cannot help: a party's refusal
    with one of the codes above, a failure marked fatal, and every error the
    coordinator finds itself (a mismatch in the handshake, its own config or
    files, another coordinator)."""
    if isinstance(error, JobFailedError):
        return error.fatal
    if isinstance(error, PeerError):
        if error.code in _FATAL_CODES:
            return True
        return (
            error.code == "FAILED_PRECONDITION"
            and error.rpc in _FATAL_PRECONDITION_CALLS
        )
    return True
