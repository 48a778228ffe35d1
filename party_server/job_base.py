"""What every role's job shares: its spec, its rows, its passes and its status."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.common.batching import (
    RowSplit,
    batch_rows,
    epoch_order,
    eval_batch_size,
    index_dtype,
    split_rows,
    steps_per_epoch,
)
from splitrec.common.errors import (
    CheckpointMismatchError,
    DataError,
    InvalidMessageError,
    JobStateError,
)
from splitrec.common.metrics import Metrics
from splitrec.common.names import name_problem
from splitrec.common.paths import confined
from splitrec.common.positions import at, epoch_outside
from splitrec.common.traffic import Traffic
from splitrec.config.jobspec import JobSpec
from splitrec.config.privacy import PrivacySpent
from splitrec.models.features import PackedBatch
from splitrec.models.serving import BaseServing, FuseServing
from splitrec.party_server.checkpoints import CheckpointStore
from splitrec.party_server.data_slice import DataSlice
from splitrec.party_server.model_export import (
    ExportedPart,
    export_part,
    load_exported_state,
)
from splitrec.party_server.prepared_batches import PREPARED_AHEAD, PreparedBatches
from splitrec.privacy.accountant import embedding_privacy

logger = logging.getLogger(__name__)

TRAIN = "train"


@dataclass(frozen=True)
class Progress:
    epoch: int
    next_step: int
    samples: int
    metrics: Metrics | None = None
    # Party-to-party traffic of the window so far (feature parties, which
    # count every message of their window's stream once).
    traffic: Traffic | None = None


@dataclass(frozen=True)
class Pass:
    """The ordered rows one pass reads and how it cuts them into batches."""

    rows: np.ndarray
    batch_size: int

    @property
    def steps(self) -> int:
        return steps_per_epoch(self.rows.size, self.batch_size)

    def batch(self, step: int) -> np.ndarray:
        return batch_rows(self.rows, self.batch_size, step)

    def prepared(
        self,
        take: Callable[[np.ndarray], PackedBatch],
        first: int = 0,
        end: int | None = None,
        ahead: int = PREPARED_AHEAD,
    ) -> PreparedBatches:
        """Steps ``first..end-1``'s inputs (``take`` of their rows), made on a
        background thread up to ``ahead`` steps before they are asked for (see
        ``PreparedBatches``)."""
        last = self.steps if end is None else end
        return PreparedBatches(self.batch, take, first, last, ahead)


@dataclass(frozen=True)
class Evaluation:
    """Rows a pass read; metrics only at the label party."""

    rows: int
    metrics: Metrics | None


def _checked_split(rows: int, spec: JobSpec) -> RowSplit:
    """The row split, refused when it cannot fill one training batch. A
    scoring job (``spec.dataset``) trains nothing: every row is scored."""
    if spec.dataset:
        if rows == 0:
            raise DataError(
                f"job {spec.job_id}: the parties share no row of dataset "
                f"{spec.dataset!r}; there is nothing to score"
            )
        dtype = index_dtype(rows)
        return RowSplit(np.arange(rows, dtype=dtype), np.zeros(0, dtype))
    split = split_rows(rows, spec.validation_fraction, spec.seed) if rows > 1 else None
    train = int(split.train.size) if split is not None else rows
    if split is None or train < spec.batch_size:
        raise DataError(
            f"job {spec.job_id}: the parties share {rows} rows after alignment, "
            f"{train} of them for training; one training batch needs "
            f"{spec.batch_size} (batch_size) and validation needs at least one row. "
            "Use a smaller batch_size or give the parties more common rows"
        )
    return split


class JobStatus:
    """Counters a person can read through the status RPC; updated by the job."""

    def __init__(self) -> None:
        self.state = "prepared"
        self.epoch = 0
        self.step = 0
        self.samples_per_second = 0.0
        self.last_metrics: Metrics | None = None
        # Most forward steps a feature party had in flight (pipeline depth used).
        self.in_flight_peak = 0
        # The depth chosen last under pipeline_size auto (0: not chosen).
        self.pipeline_depth = 0


class PartyJob:
    """One job at one party: rows, split, passes. Subclassed once per role."""

    def __init__(
        self, spec: JobSpec, party: str, data: DataSlice, output_dir: Path
    ) -> None:
        self.spec = spec
        self.party = party
        self.data = data
        # The job's own folder: the only place it writes (see splitrec.common.names).
        self.folder = confined(output_dir, spec.job_id)
        self.checkpoints = CheckpointStore(self.folder / "checkpoints")
        # Whether the rows came from a cached alignment rather than a PSI run.
        self.alignment_cached = False
        # Findings worth a person's attention, reported by PrepareJob.
        self.warnings: list[str] = []
        self.split: RowSplit = _checked_split(data.num_rows, spec)
        # Embedding DP accounted per user: the most training rows about one
        # user (set by a feature party; 0 otherwise).
        self.max_user_rows = 0
        self.status = JobStatus()
        self._busy = threading.Lock()

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.split.train.size, self.spec.batch_size)

    def train_pass(self, epoch: int) -> Pass:
        return Pass(
            epoch_order(self.split.train, self.spec.seed, epoch), self.spec.batch_size
        )

    def read_pass(self, split: str) -> Pass:
        """Rows of an evaluation or prediction pass, in row order."""
        if split == "all":
            rows = np.arange(self.data.num_rows, dtype=index_dtype(self.data.num_rows))
        else:
            rows = self.split.train if split == "train" else self.split.validation
        return Pass(rows, eval_batch_size(self.spec.batch_size))

    def split_size(self, split: str) -> int:
        """How many rows ``read_pass(split)`` reads, without building them."""
        if split == "all":
            return self.data.num_rows
        return self.read_pass(split).rows.size

    def check_window(self, epoch: int, first_step: int, num_steps: int) -> None:
        if not 0 <= epoch < self.spec.epochs:
            raise JobStateError(epoch_outside(epoch, self.spec.epochs))
        if (
            first_step < 0
            or num_steps <= 0
            or first_step + num_steps > self.steps_per_epoch
        ):
            raise JobStateError(
                f"steps {first_step}..{first_step + num_steps - 1} of epoch "
                f"{epoch + 1} are outside the epoch's 0..{self.steps_per_epoch - 1}"
            )

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    @contextlib.contextmanager
    def exclusive(self, state: str) -> Iterator[None]:
        """One pass at a time; the status shows what runs."""
        if not self._busy.acquire(blocking=False):
            raise JobStateError(
                f"job {self.spec.job_id} is busy ({self.status.state}); wait for it to "
                "finish"
            )
        self.status.state = state
        try:
            yield
        finally:
            self.status.state = "idle"
            self._busy.release()

    def privacy_spent(self) -> PrivacySpent | None:
        """ε spent by the job's embedding DP up to the current step."""
        return embedding_privacy(
            self.spec.privacy,
            self.spec.batch_size,
            int(self.split.train.size),
            self.status.epoch * self.steps_per_epoch + self.status.step,
            self.steps_per_epoch,
            self.max_user_rows,
        )

    def note_speed(self, samples: int, started: float) -> None:
        elapsed = time.monotonic() - started
        if elapsed > 0:
            self.status.samples_per_second = samples / elapsed

    def run_window(
        self,
        epoch: int,
        first_step: int,
        num_steps: int,
        report_every: int,
        cancelled: threading.Event,
    ) -> Iterator[Progress]:
        """Trains steps ``first_step..first_step+num_steps-1`` of an epoch."""
        raise NotImplementedError

    def evaluate(
        self, epoch: int, split: str, cancelled: threading.Event
    ) -> Evaluation:
        """The forward pass over a split."""
        raise NotImplementedError

    def predict(self, epoch: int, split: str, cancelled: threading.Event) -> int:
        """Scores a split; returns the number of rows."""
        raise NotImplementedError

    def serving_part(self) -> BaseServing | FuseServing:
        """The party's trained part over raw columns (what an export saves)."""
        raise NotImplementedError

    def export_model(
        self, version: str, epoch: int, metrics: Metrics | None, export_id: str
    ) -> ExportedPart:
        """Writes the party's own part of the model as it stands now under
        ``version`` (see ``splitrec.party_server.model_export``), naming the export
        ``export_id``."""
        problem = name_problem(export_id)
        if problem is not None:
            raise InvalidMessageError(f"ExportModel export_id: {problem}")
        with self.exclusive("exporting"):
            return export_part(
                self.spec,
                self.party,
                self.folder,
                self.serving_part(),
                version,
                epoch,
                metrics,
                self.model_state.arrays(),
                export_id,
            )

    def warm_start(self, output_dir: Path) -> None:
        """Loads the party's part of the job's ``init_from`` version, if any
        (before any step)."""
        if self.spec.init_from is not None:
            load_exported_state(
                self.model_state, output_dir, self.party, self.spec.init_from
            )

    def state(self) -> dict[str, np.ndarray]:
        """The job's trainable state as arrays: model, optimizer, role extras."""
        raise NotImplementedError

    def load_state(self, arrays: dict[str, np.ndarray], source: str) -> None:
        raise NotImplementedError

    def checkpoint_state(self, step: int) -> dict[str, np.ndarray]:
        """What a checkpoint before ``step`` of an epoch holds: ``state``."""
        return self.state()

    def _check_position(self, epoch: int, step: int) -> None:
        if not (
            0 <= epoch < self.spec.epochs and 0 <= step < self.steps_per_epoch
        ) and (epoch, step) != (self.spec.epochs, 0):
            raise JobStateError(
                f"position {at(epoch, step)} is outside the job "
                f"({self.spec.epochs} epochs of {self.steps_per_epoch} steps)"
            )

    def save_checkpoint(
        self, checkpoint_id: int, epoch: int, step: int
    ) -> tuple[str, int]:
        """Writes the state before ``step`` of ``epoch``; returns digest and size."""
        self._check_position(epoch, step)
        with self.exclusive("checkpointing"):
            position = np.array([epoch, step], np.int64)
            arrays = {"position": position, **self.checkpoint_state(step)}
            digest, size = self.checkpoints.save(checkpoint_id, arrays)
        logger.info(
            "job %s: checkpoint %d at %s (%d bytes)",
            self.spec.job_id,
            checkpoint_id,
            at(epoch, step),
            size,
        )
        return digest, size

    def restore_checkpoint(
        self, checkpoint_id: int, epoch: int, step: int, digest: str
    ) -> None:
        """Puts the job back to a checkpoint; nothing changes if it does not fit."""
        self._check_position(epoch, step)
        with self.exclusive("restoring"):
            arrays = self.checkpoints.load(checkpoint_id, digest)
            source = str(self.checkpoints.path(checkpoint_id))
            if tuple(arrays["position"].tolist()) != (epoch, step):
                raise CheckpointMismatchError(
                    f"{source} holds {at(*arrays['position'].tolist())}, not "
                    f"{at(epoch, step)}"
                )
            self.load_state(arrays, source)
            self.status.epoch, self.status.step = epoch, step
        logger.info(
            "job %s: restored checkpoint %d (%s)",
            self.spec.job_id,
            checkpoint_id,
            at(epoch, step),
        )

    def close(self) -> None:
        """Releases what the job holds; subclasses also wake their waiters."""
        self.status.state = "ended"
