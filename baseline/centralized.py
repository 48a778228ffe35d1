"""Trains the composed model (all bases + fuse) in one process on the same batches.

This is the reference the split job must match (same seed, same rows, same
order, same initial weights) and the baseline benchmarks compare against.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import keras
import numpy as np

from splitrec.common.batching import (
    RowSplit,
    batch_rows,
    epoch_order,
    eval_batch_size,
    split_rows,
    steps_per_epoch,
)
from splitrec.common.errors import HandshakeError
from splitrec.common.history import EpochRecord
from splitrec.common.metrics import MetricAccumulator, Metrics, Task, task_metrics
from splitrec.common.throughput import SteadyRate
from splitrec.config.job import JobConfig
from splitrec.config.party import PartyConfig
from splitrec.models.build import build_fuse, build_party_base
from splitrec.models.features import PackedBatch
from splitrec.models.steps import CentralStep
from splitrec.party_server.alignment import plain_alignment
from splitrec.party_server.data_slice import DataSlice, load_data_slice

logger = logging.getLogger(__name__)


@dataclass
class Federation:
    """A job's parties side by side in one process: their data aligned on the
    IDs every party holds (in the job's party order), the training/validation
    split, each party's base (numeric scaling fitted on the training rows) and
    the label party's fuse, all seeded as the split job seeds them."""

    order: list[str]
    slices: list[DataSlice]
    split: RowSplit
    bases: list[keras.Model]
    fuse: keras.Model
    tasks: tuple[Task, ...]

    def labels(self, job: JobConfig) -> np.ndarray:
        labels = self.slices[self.order.index(job.label_party)].labels
        if labels is None:
            raise HandshakeError(
                f"label party {job.label_party} has no label configured"
            )
        return labels


def compose(
    job: JobConfig, parties: dict[str, tuple[PartyConfig, DataSlice]]
) -> Federation:
    """The job's federation in one process (see ``Federation``)."""
    order = [p.name for p in job.parties]
    missing = [n for n in order if n not in parties]
    if missing:
        raise HandshakeError(f"no party config given for {missing} of {job.source}")
    raw = [parties[n][1] for n in order]
    rows = plain_alignment(raw)
    if rows[0].size == 0:
        raise HandshakeError(f"no row ID is held by every party of {order}")
    slices = [s.view(r) for s, r in zip(raw, rows, strict=True)]
    split = split_rows(slices[0].num_rows, job.validation_fraction, job.seed)
    configs = [parties[n][0] for n in order]
    bases = [
        build_party_base(c.party, s.features, split.train, c.model, job.seed)
        for c, s in zip(configs, slices, strict=True)
    ]
    outputs = {n: b.output_spec for n, b in zip(order, bases, strict=True)}
    label = parties[job.label_party][0]
    fuse = build_fuse(outputs, label.model, job.seed)
    return Federation(order, slices, split, bases, fuse, label.tasks)


class CentralizedTrainer:
    """The job's parties' data and models, composed in the job's party order."""

    def __init__(
        self, job: JobConfig, parties: dict[str, tuple[PartyConfig, DataSlice]]
    ) -> None:
        self.job = job
        federation = compose(job, parties)
        self.order, self.slices = federation.order, federation.slices
        self.labels = federation.labels(job)
        self.split = federation.split
        self.bases, self.fuse = federation.bases, federation.fuse
        self.tasks = federation.tasks
        self.step = CentralStep(
            self.bases, self.fuse, job.optimizer, job.learning_rate, self.tasks
        )

    def inputs(self, rows: np.ndarray) -> list[PackedBatch]:
        return [s.features.take(rows) for s in self.slices]

    def train_epoch(
        self, epoch: int, max_steps: int | None = None
    ) -> tuple[Metrics, float]:
        """Trains an epoch (or its first ``max_steps`` steps) in the split order.

        Returns the epoch's metrics and its steady throughput (samples per second
        from the first progress report on, as the coordinator measures it).
        """
        steady = SteadyRate()
        order = epoch_order(self.split.train, self.job.seed, epoch)
        accumulator = MetricAccumulator(self.tasks)
        size = self.job.batch_size
        steps = steps_per_epoch(order.size, size)
        for step in range(steps if max_steps is None else min(steps, max_steps)):
            rows = batch_rows(order, size, step)
            labels = self.labels[rows]
            loss, losses, scores = self.step.train(self.inputs(rows), labels)
            accumulator.add(labels, scores.numpy(), float(loss), losses.numpy())
            if (step + 1) % self.job.report_every == 0:
                steady.mark(accumulator.count)
        steady.mark(accumulator.count)
        return accumulator.result(), steady.rate()

    def evaluate(self, rows: np.ndarray) -> Metrics:
        size = eval_batch_size(self.job.batch_size)
        scores = [
            self.step.predict(self.inputs(rows[i : i + size])).numpy()
            for i in range(0, rows.size, size)
        ]
        return task_metrics(self.tasks, self.labels[rows], np.concatenate(scores))

    def fit(self) -> list[EpochRecord]:
        """Trains every epoch and evaluates after each, like the split job."""
        records = []
        for epoch in range(self.job.epochs):
            started = time.monotonic()
            train, steady = self.train_epoch(epoch)
            seconds = time.monotonic() - started
            validation = self.evaluate(self.split.validation)
            record = EpochRecord.of(
                epoch, train, validation, self.split.train.size, seconds, steady
            )
            logger.info("centralized %s", record.summary(self.job.epochs))
            records.append(record)
        return records


def load_parties(paths: list) -> dict[str, tuple[PartyConfig, DataSlice]]:
    """Reads each party's config and data, as each party server would."""
    from splitrec.config.party import load_party_config

    parties = {}
    for path in paths:
        config = load_party_config(path)
        parties[config.party] = (config, load_data_slice(config))
    return parties
