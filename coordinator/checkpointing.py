"""Coordinated checkpoints: the two-phase commit, and restoring the newest
checkpoint that every party still holds intact."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from splitrec.common.errors import JobFailedError, PeerError
from splitrec.common.history import EpochRecord
from splitrec.common.names import MAX_CHECKPOINT_ID
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.fan_out import at_every_party, gather
from splitrec.coordinator.manifest import CheckpointEntry, Manifest, write_manifest

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Checkpoints:
    """Saves and restores the job's checkpoints at every party at once."""

    def __init__(
        self, job: str, run_dir: Path, keep: int, clients: dict[str, PartyClient]
    ) -> None:
        self._job = job
        self._run_dir = run_dir
        self._keep = keep
        self._clients = clients

    def _everywhere(self, call: Callable[[PartyClient], T]) -> dict[str, T]:
        return at_every_party(self._clients, call)

    def save(
        self,
        manifest: Manifest,
        epoch: int,
        step: int,
        records: list[EpochRecord],
        traffic: dict | None = None,
        pinned: set[int] | frozenset[int] = frozenset(),
    ) -> None:
        """Two-phase commit: every party writes, then the manifest names it
        (with the history and the traffic counted so far). The newest
        ``keep`` checkpoints stay, and those taken after the epochs
        ``pinned`` names (the best one, for early stopping to go back to)."""
        checkpoint_id = manifest.next_id()
        if checkpoint_id > MAX_CHECKPOINT_ID:
            raise JobFailedError(
                f"job {self._job} has used up its checkpoint ids; start it afresh "
                "(--fresh)",
                fatal=True,
            )
        logger.debug("checkpoint %d: saving at every party", checkpoint_id)
        replies = self._everywhere(
            lambda c: c.save_checkpoint(self._job, checkpoint_id, epoch, step)
        )
        entry = CheckpointEntry(
            checkpoint_id,
            epoch,
            step,
            {n: r.digest for n, r in replies.items()},
            traffic or {},
        )
        every = [*manifest.checkpoints, entry]
        newest = every[-self._keep :]
        manifest.checkpoints = [
            e
            for e in every
            if any(e is n for n in newest) or (e.step == 0 and e.epoch in pinned)
        ]
        manifest.records = [dataclasses.asdict(r) for r in records]
        write_manifest(self._run_dir, manifest)
        keep = [e.checkpoint_id for e in manifest.checkpoints]
        self._everywhere(lambda c: c.commit_checkpoints(self._job, keep))

    def restore(self, manifest: Manifest) -> CheckpointEntry:
        """Restores the newest committed checkpoint at every party; when a party
        lost it (missing or changed file), the newest one before it that every
        party still holds. Later entries then leave the manifest."""
        lost = []
        for entry in reversed(manifest.checkpoints):
            failures = self._restore(entry)
            if failures:
                # Lost files send the restore back in time; any other failure
                # (a party down) is for the recovery to handle.
                for error in failures:
                    if not (isinstance(error, PeerError) and error.code == "DATA_LOSS"):
                        raise error
                for error in failures:
                    logger.warning(
                        "checkpoint %d (epoch %d, step %d) cannot be restored: %s",
                        entry.checkpoint_id,
                        entry.epoch + 1,
                        entry.step,
                        error,
                    )
                lost.append(f"{entry.checkpoint_id}: {failures[0]}")
                continue
            if entry is not manifest.latest:
                logger.warning(
                    "went back to checkpoint %d (epoch %d, step %d), the newest one "
                    "every party holds intact",
                    entry.checkpoint_id,
                    entry.epoch + 1,
                    entry.step,
                )
                manifest.back_to(entry)
                write_manifest(self._run_dir, manifest)
            return entry
        raise JobFailedError(
            f"no committed checkpoint of job {self._job} is intact at every party "
            f"({'; '.join(lost) or 'the manifest lists none'}); run with --fresh to "
            "start the job afresh",
            fatal=True,
        )

    def after_epoch(self, manifest: Manifest, epoch: int) -> CheckpointEntry:
        """The checkpoint the manifest keeps of the end of ``epoch`` (1-based)."""
        for entry in manifest.checkpoints:
            if entry.step == 0 and entry.epoch == epoch:
                return entry
        raise JobFailedError(
            f"the checkpoint after epoch {epoch} of job {self._job} is no longer "
            f"kept (checkpoint.keep is {self._keep})",
            fatal=True,
        )

    def restore_entry(self, entry: CheckpointEntry) -> None:
        """Restores ``entry`` at every party; the first failure is raised."""
        failures = self._restore(entry)
        if failures:
            raise failures[0]

    def _restore(self, entry: CheckpointEntry) -> list[Exception]:
        """Restores ``entry`` everywhere; the failures (every call has ended)."""
        _, failures = gather(
            self._clients,
            lambda c: c.restore_checkpoint(
                self._job,
                entry.checkpoint_id,
                entry.epoch,
                entry.step,
                entry.digests.get(c.name, ""),
            ),
        )
        return list(failures.values())
