"""Which coordinator drives each job at this party.

A coordinator claims a job with ``HoldJob`` and holds it while that stream stays
open; every control call about the job carries the holder's token. A claim by
another coordinator while the stream is open is refused, naming the holder, so a
second coordinator started by mistake cannot break the first one's run. When the
holder's streams end (it stopped, died, or lost the network), the next claim
takes the job over, and calls still carrying the old token are refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from splitrec.common.errors import OwnershipError

logger = logging.getLogger(__name__)

# How often a held job's stream says it is alive.
HEARTBEAT_SECONDS = 5.0


@dataclass
class Holder:
    token: str
    description: str
    since: float
    # Open HoldJob streams of this holder: while there is one, it is alive.
    streams: int = 0

    def show(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.description or 'an unnamed coordinator'} (since {started})"


class JobOwners:
    """The holder of each job; thread-safe."""

    def __init__(self) -> None:
        self._holders: dict[str, Holder] = {}
        self._cond = threading.Condition()

    def claim(
        self, job_id: str, token: str, description: str, stream: bool = False
    ) -> Holder:
        """Makes ``token`` the job's holder; refuses while another holder's
        stream is open. ``stream`` counts the caller as an open HoldJob."""
        with self._cond:
            holder = self._holders.get(job_id)
            if holder is not None and holder.token != token:
                if holder.streams > 0:
                    raise OwnershipError(
                        f"job {job_id!r} is driven by {holder.show()}; a second "
                        "coordinator may not drive it at the same time (stop that "
                        "one first, or give this job another name)"
                    )
                logger.warning(
                    "job %s: taking it over from %s, which holds it no more",
                    job_id,
                    holder.show(),
                )
                holder = None
            if holder is None:
                holder = Holder(token, description, time.time())
                self._holders[job_id] = holder
            if stream:
                holder.streams += 1
            self._cond.notify_all()
            return holder

    def release(self, job_id: str, token: str) -> None:
        """One of the holder's HoldJob streams ended."""
        with self._cond:
            holder = self._holders.get(job_id)
            if holder is not None and holder.token == token and holder.streams > 0:
                holder.streams -= 1
            self._cond.notify_all()

    def check(self, job_id: str, token: str) -> None:
        """Refuses a call about the job from anyone but its holder."""
        with self._cond:
            holder = self._holders.get(job_id)
            if holder is None or holder.token == token:
                return
            raise OwnershipError(
                f"job {job_id!r} is driven by {holder.show()}; this call comes from "
                "another coordinator (was the job taken over?)"
            )

    def held_by(
        self,
        job_id: str,
        token: str,
        wait: float,
        open_: Callable[[], bool] = lambda: True,
    ) -> bool:
        """Waits up to ``wait`` s; False once another coordinator took the job.
        Returns at once when ``open_()`` turns false (the caller's stream
        ended: its release wakes the wait), so that no handler outlives its
        call by a heartbeat."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                holder = self._holders.get(job_id)
                if holder is not None and holder.token != token:
                    return False
                if not open_():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)

    def describe(self, job_id: str) -> str:
        with self._cond:
            holder = self._holders.get(job_id)
            return holder.show() if holder is not None else ""
