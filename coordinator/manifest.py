"""The job's manifest: the checkpoints every party has committed, and the history.

A checkpoint enters the manifest only after every party wrote it (phase one);
the manifest is then written atomically (phase two). It therefore never names a
checkpoint that some party lacks, and a restarted coordinator resumes from its
last entry. An exported model version enters it likewise once every party
holds its part, and stays in the manifests of the job's later runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from splitrec.common.atomic import write_atomically
from splitrec.common.errors import JobFailedError
from splitrec.common.history import json_record
from splitrec.config.jobspec import JobSpec, PartExport

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
# JobSpec fields that a fingerprint leaves out while they are unset.
LATER_FIELDS = ("init_from", "dataset")


@dataclass(frozen=True)
class CheckpointEntry:
    checkpoint_id: int
    epoch: int
    step: int
    digests: dict[str, str]
    # The training traffic counted up to this checkpoint (``TrafficLedger``).
    traffic: dict = field(default_factory=dict)


@dataclass
class Manifest:
    job: str
    fingerprint: str
    checkpoints: list[CheckpointEntry] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    finished: bool = False
    # Each party's fingerprint when the job started (``splitrec.config.fingerprint``).
    parties: dict[str, dict[str, str]] = field(default_factory=dict)
    # Row counts of the job's alignment (``PreparedJob.rows``).
    rows: dict[str, int] = field(default_factory=dict)
    # Exported model versions: the epoch, the export id, and each party's
    # model digest ("parties") and file-list digest ("files").
    exports: dict[str, dict] = field(default_factory=dict)
    # The settings a command-line flag may override (epochs, batch_size), as
    # the run used them: a later export prepares the job with them again.
    settings: dict[str, int] = field(default_factory=dict)
    # The epoch after which a callback (early stopping) ended training; 0
    # while it trains to its last epoch.
    stopped: int = 0
    # The epoch whose model the run ended with (the last, or the best one
    # early stopping went back to); 0 until the run ends.
    final_epoch: int = 0

    @property
    def latest(self) -> CheckpointEntry | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def add_export(
        self, version: str, epoch: int, parts: dict[str, PartExport]
    ) -> None:
        """Records an exported version: its epoch, the export its parts come
        from, and each party's model and file-list digests."""
        self.exports[version] = {
            "epoch": epoch,
            "export_id": next(iter(parts.values())).export_id if parts else "",
            "parties": {p: part.model_digest for p, part in parts.items()},
            "files": {p: part.files_digest for p, part in parts.items()},
        }

    def next_id(self) -> int:
        return self.latest.checkpoint_id + 1 if self.latest else 0

    def records_at(self, entry: CheckpointEntry) -> list[dict]:
        """The history when ``entry`` was taken: the epochs finished by then."""
        return [r for r in self.records if r["epoch"] <= entry.epoch]

    def back_to(self, entry: CheckpointEntry) -> None:
        """Forgets the checkpoints after ``entry`` (lost at some party) and the
        epochs they recorded: training goes on from ``entry``."""
        index = self.checkpoints.index(entry)
        self.checkpoints = self.checkpoints[: index + 1]
        self.records = self.records_at(entry)


def fingerprint(spec: JobSpec) -> str:
    """A digest of everything that decides the training: a manifest resumes
    only the job it was written for."""
    fields = dataclasses.asdict(spec)
    # Settings added later count only when set: manifests written before
    # them keep their fingerprints.
    for key in LATER_FIELDS:
        if not fields[key]:
            del fields[key]
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise JobFailedError(
            f"{path}: cannot read the job's manifest ({exc}); move it away to start "
            "the job afresh"
        ) from None
    try:
        return Manifest(
            job=data["job"],
            fingerprint=data["fingerprint"],
            checkpoints=[CheckpointEntry(**c) for c in data["checkpoints"]],
            records=list(data["records"]),
            finished=bool(data["finished"]),
            parties=dict(data.get("parties", {})),
            rows=dict(data.get("rows", {})),
            exports=dict(data.get("exports", {})),
            settings=dict(data.get("settings", {})),
            stopped=int(data.get("stopped", 0)),
            final_epoch=int(data.get("final_epoch", 0)),
        )
    except (KeyError, TypeError) as exc:
        raise JobFailedError(
            f"{path}: the manifest lacks {exc}; move it away to start the job afresh"
        ) from None


def recorded_exports(folder: Path) -> dict[str, dict]:
    """The model versions the manifest in ``folder`` records (none without a
    manifest; an unreadable one is warned about and records none)."""
    try:
        found = read_manifest(folder)
    except JobFailedError as exc:
        logger.warning("%s; the model versions it recorded are forgotten", exc)
        return {}
    return dict(found.exports) if found is not None else {}


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Writes the manifest atomically, as strict JSON (an undefined metric is
    null, never NaN)."""
    data = dataclasses.asdict(manifest)
    data["records"] = [json_record(r) for r in manifest.records]
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    write_atomically(folder / MANIFEST_FILE, text)
