"""``python -m splitrec.bench.profile_step``: where one split training step goes.

Builds the reference DeepFM job's pieces in one process, as the party jobs
build them (each party's aligned rows and encoded features, alice's
``BaseStep``, bob's ``FuseStep``), and runs the exact (pipeline size 1) step
loop of both parties one after the other, timing each stage of every step:

- alice: the step's inputs (its rows and ``take``; with ``--ahead``, the wait
  for inputs prepared on a background thread, ``Pass.prepared``), the
  compiled update-then-forward call, ``.numpy()``, the hidden tensor's message
  (built in place, ``forward_to_proto``) and its serialized bytes (what gRPC
  sends), and the gradient's parse and decode when it comes back;
- bob: the hidden tensor's parse and decode, the step's inputs (as alice's)
  and labels, the compiled fuse step, ``.numpy()`` of the gradient, the
  gradient's message and bytes, and the metric bookkeeping.

What is not here: gRPC itself, the hand-over between a stream's thread and
the step loop, and the two processes' competition for the cores. The rate of a
real one-epoch split run over loopback (``--split-run``) shows what they add.
The centralized step (``CentralStep`` on both parties' inputs, with the
metrics) is timed the same way, as what one process pays per step; and each
compiled call on an empty batch, as the fixed cost of calling it.

Prints a table per batch size (median and mean microseconds per step, and
each stage's share of the party's step: the sum of the medians) and writes
``<work>/profile_step.json``. The machine's load moves every figure: compare
runs made one after the other, several times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from splitrec.bench.setup import ROOT, ensure_data, run_configs
from splitrec.common.atomic import write_atomically
from splitrec.common.logs import configure_logging

logger = logging.getLogger("bench.profile_step")

ALICE, BOB, CENTRAL, EMPTY = "alice", "bob", "centralized", "empty batch"


@dataclass
class Timings:
    """Nanoseconds of each stage, step by step, by party (stages in the order
    first seen), and the serialized size of each message a step sends."""

    stages: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    message_bytes: dict[str, int] = field(default_factory=dict)

    def add(self, party: str, stage: str, nanoseconds: int) -> None:
        self.stages.setdefault(party, {}).setdefault(stage, []).append(nanoseconds)

    def merge(self, other: Timings) -> None:
        for party, stages in other.stages.items():
            for stage, values in stages.items():
                self.stages.setdefault(party, {}).setdefault(stage, []).extend(values)
        self.message_bytes.update(other.message_bytes)


class Clock:
    """Times consecutive stages of one party's step (when ``record``)."""

    def __init__(self, timings: Timings, party: str, record: bool) -> None:
        self._timings, self._party, self._record = timings, party, record
        self._last = time.perf_counter_ns()

    def lap(self, stage: str) -> None:
        now = time.perf_counter_ns()
        if self._record:
            self._timings.add(self._party, stage, now - self._last)
        self._last = time.perf_counter_ns()


@dataclass
class Job:
    """The reference job's pieces at both parties, built as the jobs build them."""

    rows: int
    train: np.ndarray
    seed: int
    alice: Any  # DataSlice
    bob: Any
    alice_step: Any  # BaseStep
    bob_step: Any  # FuseStep
    central_step: Any  # CentralStep
    tasks: tuple
    hidden_width: int


def build_job(configs: Any, rows: int) -> Job:
    """Both parties' data, models and steps for one run's configs, plus the
    centralized step over models of their own (seeded the same)."""
    from splitrec.baseline.centralized import compose, load_parties
    from splitrec.config.job import load_job_config
    from splitrec.models.build import build_fuse, build_party_base
    from splitrec.models.registry import fuse_outputs
    from splitrec.models.steps import BaseStep, CentralStep, FuseStep

    job = load_job_config(configs.job)
    parties = load_parties([configs.alice, configs.bob])
    federation = compose(job, parties)
    alice, bob = federation.slices
    alice_config, bob_config = parties[ALICE][0], parties[BOB][0]
    train = federation.split.train
    outputs = {
        name: base.output_spec
        for name, base in zip(federation.order, federation.bases, strict=True)
    }
    bob_step = FuseStep(
        federation.bases[1],
        federation.fuse,
        list(fuse_outputs(outputs)).index(BOB),
        job.optimizer,
        job.learning_rate,
        bob_config.tasks,
    )
    central = CentralStep(
        [
            build_party_base(c.party, s.features, train, c.model, job.seed)
            for c, s in ((alice_config, alice), (bob_config, bob))
        ],
        build_fuse(outputs, bob_config.model, job.seed),
        job.optimizer,
        job.learning_rate,
        bob_config.tasks,
    )
    return Job(
        rows=rows,
        train=train,
        seed=job.seed,
        alice=alice,
        bob=bob,
        alice_step=BaseStep(federation.bases[0], job.optimizer, job.learning_rate),
        bob_step=bob_step,
        central_step=central,
        tasks=bob_config.tasks,
        hidden_width=outputs[ALICE].width,
    )


@contextlib.contextmanager
def _inputs(features: Any, train: Any, steps: int, ahead: int) -> Iterator[Any]:
    """A function of a step that gives its rows and inputs: taken when asked,
    or (``ahead`` > 0) prepared up to that many steps ahead on a background
    thread (``Pass.prepared``)."""
    if ahead <= 0:
        yield lambda step: (rows := train.batch(step), features.take(rows))
        return
    with train.prepared(features.take, 0, steps, ahead) as ready:

        def get(step: int) -> tuple[np.ndarray, Any]:
            batch = ready.get(step)
            return batch.rows, batch.inputs

        yield get


def profile_batch(job: Job, batch: int, steps: int, warmup: int, ahead: int) -> Timings:
    """Runs ``warmup + steps`` exact split steps of epoch 0 at ``batch`` rows
    (the step loop of both parties, one after the other) and times the last
    ``steps``; then the centralized step on the same batches."""
    from splitrec.common.batching import epoch_order
    from splitrec.common.metrics import MetricAccumulator
    from splitrec.party_server.job_base import Pass
    from splitrec.v1 import common_pb2, peer_pb2
    from splitrec.wire.serde import (
        backward_to_proto,
        forward_to_proto,
        tensor_from_proto,
    )

    train = Pass(epoch_order(job.train, job.seed, 0), batch)
    total = min(warmup + steps, train.steps)
    if total <= warmup:
        raise ValueError(f"{job.rows} rows give {train.steps} steps at batch {batch}")
    timings = Timings()
    metrics = MetricAccumulator(job.tasks)

    def key(step: int) -> common_pb2.StepKey:
        return common_pb2.StepKey(
            job_id="profile", phase=common_pb2.PHASE_TRAIN, epoch=0, step=step
        )

    with (
        _inputs(job.alice.features, train, total, ahead) as alice_inputs,
        _inputs(job.bob.features, train, total, ahead) as bob_inputs,
    ):
        previous, gradient = None, None
        for step in range(total):
            record = step >= warmup
            # alice: the update of the last step and this step's forward.
            clock = Clock(timings, ALICE, record)
            rows, inputs = alice_inputs(step)
            clock.lap("inputs")
            if previous is None:
                hidden = job.alice_step.forward(inputs)
            else:
                hidden = job.alice_step.backward_then_forward(
                    previous, gradient, inputs
                )
            clock.lap("compiled update+forward")
            array = hidden.numpy()
            clock.lap(".numpy() hidden")
            message = forward_to_proto(key(step), array)
            clock.lap("encode hidden proto")
            wire = message.SerializeToString()
            clock.lap("serialize hidden")
            previous = inputs
            # bob: the fuse step on the hidden tensor.
            clock = Clock(timings, BOB, record)
            received = peer_pb2.PeerMessage.FromString(wire)
            clock.lap("parse hidden")
            peer_hidden = tensor_from_proto(
                received.forward.hidden,
                shape=(rows.size, job.hidden_width),
                dtype=np.float32,
                what="hidden",
            )
            clock.lap("decode hidden")
            bob_rows, bob_batch = bob_inputs(step)
            labels = job.bob.labels[bob_rows]
            clock.lap("inputs (and labels)")
            loss, losses, scores, grads = job.bob_step.train(
                bob_batch, [peer_hidden], labels
            )
            clock.lap("compiled fuse step")
            grad = grads[0].numpy()
            clock.lap(".numpy() gradient")
            reply = backward_to_proto(key(step), grad)
            clock.lap("encode gradient proto")
            reply_wire = reply.SerializeToString()
            clock.lap("serialize gradient")
            metrics.add(labels, scores.numpy(), float(loss), losses.numpy())
            clock.lap("metrics")
            # alice: the gradient comes back.
            clock = Clock(timings, ALICE, record)
            answer = peer_pb2.PeerMessage.FromString(reply_wire)
            clock.lap("parse gradient")
            gradient = tensor_from_proto(
                answer.backward.gradient,
                shape=array.shape,
                dtype=np.float32,
                what="gradient",
            )
            clock.lap("decode gradient")
            if step == warmup:  # a whole batch (a pass's last may be smaller)
                timings.message_bytes = {
                    "hidden": len(wire),
                    "gradient": len(reply_wire),
                }
    _profile_central(job, train, timings, warmup, total)
    _profile_empty(job, timings, warmup, total - warmup)
    return timings


def _profile_central(
    job: Job, train: Any, timings: Timings, warmup: int, total: int
) -> None:
    from splitrec.common.metrics import MetricAccumulator

    metrics = MetricAccumulator(job.tasks)
    for step in range(total):
        clock = Clock(timings, CENTRAL, step >= warmup)
        rows = train.batch(step)
        labels = job.bob.labels[rows]
        inputs = [job.alice.features.take(rows), job.bob.features.take(rows)]
        clock.lap("inputs (and labels)")
        loss, losses, scores = job.central_step.train(inputs, labels)
        clock.lap("compiled step")
        metrics.add(labels, scores.numpy(), float(loss), losses.numpy())
        clock.lap("metrics")


def _profile_empty(job: Job, timings: Timings, warmup: int, steps: int) -> None:
    """Each compiled call on a batch of no rows: what calling it costs."""
    alice = job.alice.features.take(np.zeros(0, np.int64))
    bob = job.bob.features.take(np.zeros(0, np.int64))
    hidden = np.zeros((0, job.hidden_width), np.float32)
    labels = job.bob.labels[np.zeros(0, np.int64)]
    calls = {
        "alice forward": lambda: job.alice_step.forward(alice),
        "alice update+forward": lambda: job.alice_step.backward_then_forward(
            alice, hidden, alice
        ),
        "bob fuse step": lambda: job.bob_step.train(bob, [hidden], labels),
    }
    for step in range(warmup + steps):
        clock = Clock(timings, EMPTY, step >= warmup)
        for name, call in calls.items():
            call()
            clock.lap(name)


def summary(timings: Timings) -> dict:
    """Per party: each stage's median and mean microseconds per step and its
    share of the sum of the medians."""
    found: dict[str, Any] = {}
    for party, stages in timings.stages.items():
        rows = {
            stage: {
                "median_us": statistics.median(values) / 1000,
                "mean_us": statistics.fmean(values) / 1000,
                "steps": len(values),
            }
            for stage, values in stages.items()
        }
        total = sum(r["median_us"] for r in rows.values())
        for row in rows.values():
            row["share"] = row["median_us"] / total if total else 0.0
        found[party] = {"stages": rows, "step_us": total}
    found["message_bytes"] = dict(timings.message_bytes)
    return found


def format_summary(batch: int, found: dict) -> str:
    lines = [
        f"batch {batch}",
        f"{'stage':<40}{'median µs':>12}{'mean µs':>12}{'share':>8}",
    ]
    for party, part in found.items():
        if party == "message_bytes":
            continue
        lines.append(f"{party}")
        for stage, row in part["stages"].items():
            lines.append(
                f"  {stage:<38}{row['median_us']:>12.1f}{row['mean_us']:>12.1f}"
                f"{row['share']:>8.1%}"
            )
        lines.append(f"  {'step (sum of medians)':<38}{part['step_us']:>12.1f}")
    pair = found.get(ALICE, {}).get("step_us", 0) + found.get(BOB, {}).get("step_us", 0)
    central = found.get(CENTRAL, {}).get("step_us", 0)
    if pair and central:
        lines.append(
            f"split step, both parties one after the other: {pair:.1f} µs "
            f"({batch / pair * 1e6:,.0f} samples/s); centralized {central:.1f} µs "
            f"({batch / central * 1e6:,.0f} samples/s)"
        )
    sizes = found.get("message_bytes", {})
    if sizes:
        lines.append(
            "serialized bytes per step: "
            + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
        )
    return "\n".join(lines)


def split_run(work: Path, data: Path, rows: int, batch: int, timeout: float) -> dict:
    """One real epoch of the split job over loopback (pipeline size 1)."""
    from splitrec.bench.runs import run_split

    configs = run_configs(work / "work" / f"profile-{rows}-b{batch}", data, batch, 1)
    result = run_split(configs, rows, batch, 1, timeout)
    return {
        "samples_per_second": result.samples_per_second,
        "epoch_seconds": result.epoch_seconds,
        "step_us": batch / result.samples_per_second * 1e6,
        "val_auc": result.val_auc,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m splitrec.bench.profile_step",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=100_000, help="generated ratings")
    parser.add_argument(
        "--batches",
        type=lambda t: [int(b) for b in t.split(",") if b],
        default=[128, 1024],
    )
    parser.add_argument("--steps", type=int, default=300, help="timed steps per batch")
    parser.add_argument("--warmup", type=int, default=20, help="steps not timed")
    parser.add_argument(
        "--ahead",
        type=int,
        default=0,
        help="each party's inputs prepared up to this many steps ahead on a "
        "background thread (0: taken in the step)",
    )
    parser.add_argument(
        "--split-run",
        action="store_true",
        help="also run one real epoch of the split job per batch size",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument("--json", type=Path, help="default <work>/profile_step.json")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--log-level")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    data = ensure_data(args.work / "data", args.rows)
    configs = run_configs(args.work / "work" / "profile-step", data, 128, 1)
    job = build_job(configs, args.rows)
    report: dict[str, Any] = {"rows": args.rows, "ahead": args.ahead, "batches": {}}
    for batch in args.batches:
        timings = profile_batch(job, batch, args.steps, args.warmup, args.ahead)
        found = summary(timings)
        if args.split_run:
            found["split_run"] = split_run(
                args.work, data, args.rows, batch, args.timeout
            )
        report["batches"][str(batch)] = found
        print(format_summary(batch, found))
        if args.split_run:
            run = found["split_run"]
            print(
                f"real split run: {run['samples_per_second']:,.0f} samples/s "
                f"({run['step_us']:.1f} µs per step)"
            )
        print()
    path = args.json or args.work / "profile_step.json"
    write_atomically(path, json.dumps(report, indent=2) + "\n")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
