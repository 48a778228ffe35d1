"""Trains the composed model (all bases + fuse) in one process on the same batches.

This is the reference the split job must match (same seed, same rows, same
order, same initial weights) and the baseline benchmarks compare against.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from common.batching import (
    batch_rows,
    epoch_order,
    eval_batch_size,
    split_rows,
    steps_per_epoch,
)
from common.config import JobConfig, PartyConfig
from common.errors import HandshakeError
from common.features import PackedBatch
from common.history import EpochRecord
from common.metrics import MetricAccumulator, Metrics, binary_metrics
from common.models.build import build_fuse, build_party_base
from common.models.steps import CentralStep
from common.throughput import SteadyRate
from party_server.alignment import aligned_slice, plain_alignment
from party_server.data_slice import DataSlice, load_data_slice

logger = logging.getLogger(__name__)


class CentralizedTrainer:
    """The job's parties' data and models, composed in the job's party order."""

    def __init__(
        self, job: JobConfig, parties: dict[str, tuple[PartyConfig, DataSlice]]
    ) -> None:
        self.job = job
        self.order = [p.name for p in job.parties]
        missing = [n for n in self.order if n not in parties]
        if missing:
            raise HandshakeError(f"no party config given for {missing} of {job.source}")
        slices = [parties[n][1] for n in self.order]
        rows = plain_alignment(slices)
        if rows[0].size == 0:
            raise HandshakeError(f"no row ID is held by every party of {self.order}")
        self.slices = [aligned_slice(s, r) for s, r in zip(slices, rows, strict=True)]
        labels = self.slices[self.order.index(job.label_party)].labels
        if labels is None:
            raise HandshakeError(
                f"label party {job.label_party} has no label configured"
            )
        self.labels = labels
        configs = [parties[n][0] for n in self.order]
        self.split = split_rows(
            self.slices[0].num_rows, job.validation_fraction, job.seed
        )
        bases = [
            build_party_base(c.party, s.features, self.split.train, c.model, job.seed)
            for c, s in zip(configs, self.slices, strict=True)
        ]
        label_model = parties[job.label_party][0].model
        outputs = {n: b.output_spec for n, b in zip(self.order, bases, strict=True)}
        fuse = build_fuse(outputs, label_model, job.seed)
        self.bases, self.fuse = bases, fuse
        self.step = CentralStep(bases, fuse, job.optimizer, job.learning_rate)

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
        accumulator = MetricAccumulator()
        size = self.job.batch_size
        steps = steps_per_epoch(order.size, size)
        for step in range(steps if max_steps is None else min(steps, max_steps)):
            rows = batch_rows(order, size, step)
            labels = self.labels[rows]
            loss, scores = self.step.train(self.inputs(rows), labels)
            accumulator.add(labels, scores.numpy(), float(loss))
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
        return binary_metrics(self.labels[rows], np.concatenate(scores))

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
    from common.config import load_party_config

    parties = {}
    for path in paths:
        config = load_party_config(path)
        parties[config.party] = (config, load_data_slice(config))
    return parties
