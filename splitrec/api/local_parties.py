"""Parties started as local processes from configs given in Python or as files.

Each party still runs its own ``splitrec-party`` process from its own config
file: the configs are written (in their file's layout) into a folder of the
caller's choice, each with a free loopback port, and every party's peers and
the job name those ports.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from splitrec.common.errors import ConfigError
from splitrec.common.folder_lock import FolderLock
from splitrec.config.base import ConfigModel
from splitrec.config.job import JobConfig, JobPartyConfig
from splitrec.config.party import PartyConfig, load_party_config
from splitrec.config.writer import write_party_config
from splitrec.coordinator.local import (
    LocalParty,
    start_federation,
    start_party,
)

logger = logging.getLogger(__name__)

PartyLike = PartyConfig | str | Path | Mapping[str, Any]
M = TypeVar("M", bound=ConfigModel)


def as_config(value: Any, model: type[M], load: Callable[[Path], M], what: str) -> M:
    """A config of ``model`` from an instance, a YAML file's path (read by
    ``load``) or a mapping (the file's layout; relative paths from the
    current folder)."""
    if isinstance(value, model):
        return value
    if isinstance(value, (str, Path)):
        return load(Path(value))
    if isinstance(value, Mapping):
        return model.model_validate(dict(value))
    raise ConfigError(
        f"a {what} is a {model.__name__}, a config file's path or a mapping, not "
        f"{type(value).__name__}"
    )


def party_config(party: PartyLike) -> PartyConfig:
    """A party's config from a ``PartyConfig``, a file's path or a mapping."""
    return as_config(party, PartyConfig, load_party_config, "party")


def check_parties(job: JobConfig, parties: Sequence[PartyConfig]) -> None:
    """The parties given are the job's, each once, and its label party holds
    the labels."""
    names = [p.party for p in parties]
    expected = [p.name for p in job.parties]
    if sorted(names) != sorted(expected):
        raise ConfigError(
            f"job {job.job} has parties {expected}; the configs given are of "
            f"{names}: give one config per party of the job"
        )
    label = next(p for p in parties if p.party == job.label_party)
    if not label.labels:
        raise ConfigError(
            f"job {job.job} names {job.label_party} its label party, but that "
            "party's config has no label"
        )


class PartyFiles:
    """The parties' config files in ``folder``, rewritten for each set of
    ports (``set_addresses``), and the job with those addresses."""

    def __init__(self, folder: Path, job: JobConfig, parties: Sequence[PartyConfig]):
        self.folder = folder
        self.job = job
        self.configs = {p.party: p for p in parties}
        self.parties = {name: folder / f"{name}.yaml" for name in self.configs}
        # Each config as last written (with its addresses).
        self.written: dict[str, PartyConfig] = {}

    def set_addresses(self, addresses: Mapping[str, str]) -> None:
        for name, config in self.configs.items():
            peers = tuple(
                peer.model_copy(update={"address": addresses[peer.name]})
                if peer.name in addresses
                else peer
                for peer in config.peers
            )
            updated = config.model_copy(
                update={"listen": addresses[name], "peers": peers}
            )
            write_party_config(updated, self.parties[name])
            self.written[name] = updated
        self.job = self.job.model_copy(
            update={
                "parties": tuple(
                    JobPartyConfig(
                        name=p.name, address=addresses[p.name], identity=p.identity
                    )
                    for p in self.job.parties
                )
            }
        )


# Parties started here and not yet stopped, held until they are: stopped when
# the interpreter exits, should their federation be dropped unclosed.
_RUNNING: set[StartedParties] = set()


class StartedParties:
    """Local party processes and the lock on the folder of their configs;
    ``stop`` ends them all (SIGTERM, then SIGKILL) and lets the folder go."""

    def __init__(
        self, parties: Mapping[str, LocalParty], folder: Path, lock: FolderLock
    ) -> None:
        self.parties = dict(parties)
        self.folder = folder
        self._lock = lock
        _RUNNING.add(self)

    def stop(self) -> dict[str, int]:
        codes = {}
        try:
            # Every party is asked at once: one that still holds a stream to
            # another would otherwise keep that one waiting out its grace.
            for party in self.parties.values():
                if party.exit is None:
                    # Not Popen.send_signal: its poll() would reap the child
                    # before its peak memory is read.
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(party.process.pid, signal.SIGTERM)
            for name, party in reversed(list(self.parties.items())):
                codes[name] = party.stop()
                logger.info("party %s stopped (exit code %s)", name, codes[name])
        finally:
            if self in _RUNNING:
                _RUNNING.discard(self)
                self._lock.__exit__(None, None, None)
        return codes


@atexit.register
def _stop_leftovers() -> None:
    for started in list(_RUNNING):
        started.stop()


def _lock_folder(folder: Path) -> FolderLock:
    """The folder of a local federation's configs, for it alone: another one
    (in this process or another) would rewrite the files of running parties."""
    for started in _RUNNING:
        if started.folder == folder:
            raise ConfigError(
                f"{folder} holds the configs of parties this process started and "
                "has not stopped; close that federation first (fed.close(), or "
                "leave its with block), or give this one another work="
            )
    lock = FolderLock(
        folder,
        ".federation.lock",
        "a local federation",
        "close it first, or give this one another work=",
    )
    lock.__enter__()
    return lock


def start_parties(
    job: JobConfig,
    parties: Sequence[PartyLike],
    folder: Path,
    logs: Path,
    ready_timeout: float = 120.0,
) -> tuple[JobConfig, StartedParties, dict[str, PartyConfig]]:
    """Writes the parties' configs into ``folder`` on free loopback ports and
    starts one ``splitrec-party`` per party (the label party first), each
    logging to ``logs/<party>.log``. Returns the job with the parties'
    addresses, the processes, and each party's config as started."""
    configs = [party_config(p) for p in parties]
    check_parties(job, configs)
    folder = folder.resolve()
    lock = _lock_folder(folder)
    try:
        files = PartyFiles(folder, job, configs)

        def start(name: str, path: Path) -> LocalParty:
            return start_party(path, logs / f"{name}.log", ready_timeout=ready_timeout)

        started = start_federation(files, start, first=job.label_party)
    except BaseException:
        lock.__exit__(None, None, None)
        raise
    return files.job, StartedParties(started, folder, lock), files.written


__all__ = [
    "PartyFiles",
    "StartedParties",
    "check_parties",
    "party_config",
    "start_parties",
]
