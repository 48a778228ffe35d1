"""Which failures a recovery from the last checkpoint can fix, and which not.

A party that died, was unreachable or stalled comes back; a job whose settings
or data changed, whose caller is not allowed, or whose disk is full does not
get better by trying again: such a failure ends the job at once with its
message instead of using up every recovery attempt. A party marks its refusals
of that kind (``SplitRecError.permanent``, sent as trailing metadata); gRPC's own
errors are judged by their status code.
"""

from __future__ import annotations

from collections.abc import Iterable

from splitrec.common.errors import JobFailedError, PeerError

# Status codes that no retry fixes, whoever sent them.
_FATAL_CODES = frozenset(
    {"INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAUTHENTICATED", "UNIMPLEMENTED"}
)


def is_fatal(error: Exception) -> bool:
    """True when recovering from a checkpoint cannot help: a party's permanent
    refusal, a code above, a failure marked fatal, and every error the
    coordinator finds itself (a mismatch in the handshake, its own config or
    files, another coordinator)."""
    if isinstance(error, JobFailedError):
        return error.fatal
    if isinstance(error, PeerError):
        return error.permanent or error.code in _FATAL_CODES
    return True


def most_telling(failures: Iterable[Exception]) -> Exception:
    """Of failures at several parties at once, the one to report: the first
    that no retry fixes, else the first that is not a mere cancellation (a
    party whose call was cancelled because another failed). Several parties'
    permanent refusals (every party whose exported part no longer matches,
    say) are reported together, in one error."""
    failures = list(failures)
    refused = [e for e in failures if isinstance(e, PeerError) and e.permanent]
    if len(refused) > 1:
        codes = {e.code for e in refused}
        return PeerError(
            "; ".join(str(e) for e in refused),
            refused[0].code if len(codes) == 1 else "FAILED_PRECONDITION",
            refused[0].rpc,
            permanent=True,
        )
    return max(
        failures,
        key=lambda e: (is_fatal(e), getattr(e, "code", "") != "CANCELLED"),
    )
