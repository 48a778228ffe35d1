"""The label party's job: its base, the fuse model, the loss and the metrics."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from splitrec.common.atomic import write_atomically
from splitrec.common.batching import (
    RowSplit,
    batch_length,
    eval_batch_size,
    steps_per_epoch,
)
from splitrec.common.compression import Compressor
from splitrec.common.errors import (
    ConfigError,
    DataError,
    HandshakeError,
    InvalidMessageError,
    JobStateError,
    PeerError,
    UnknownJobError,
)
from splitrec.common.metrics import MetricAccumulator, Metrics, task_metrics
from splitrec.common.positions import at, epoch_outside
from splitrec.config.jobspec import JobSpec
from splitrec.config.party import PartyConfig
from splitrec.models.build import build_fuse, build_party_base
from splitrec.models.registry import combined_structure, fuse_outputs
from splitrec.models.serving import SUMMED, FuseServing
from splitrec.models.steps import FuseStep
from splitrec.party_server.checkpoints import ModelState
from splitrec.party_server.data_slice import DataSlice
from splitrec.party_server.job_base import Evaluation, PartyJob, Pass, Progress
from splitrec.party_server.leakage_probe import ReceivedProbe
from splitrec.party_server.mailbox import Inbound, Mailbox
from splitrec.party_server.prepared_batches import PreparedBatches
from splitrec.party_server.row_store import RowColumn
from splitrec.party_server.secure_sums import ShareBoard
from splitrec.privacy.mechanisms import (
    GRADIENT_NOISE,
    LABEL_FLIPS,
    defend,
    generator,
    randomized_response,
)
from splitrec.privacy.secure_aggregation import fixed_point
from splitrec.security.tls import Credentials
from splitrec.v1 import common_pb2, peer_pb2
from splitrec.wire.serde import (
    backward_to_proto,
    compressed_from_proto,
    compressed_to_proto,
    key_share_from_proto,
    key_share_to_proto,
    masked_from_proto,
    split_from_proto,
    tensor_from_proto,
)

logger = logging.getLogger(__name__)

# The passes a peer stream may carry.
_PHASES = (
    common_pb2.PHASE_TRAIN,
    common_pb2.PHASE_EVALUATE,
    common_pb2.PHASE_PREDICT,
)


class LabelJob(PartyJob):
    """Takes every feature party's hidden tensor per step and returns gradients."""

    def __init__(
        self,
        spec: JobSpec,
        config: PartyConfig,
        data: DataSlice,
        peer_timeout: float,
        credentials: Credentials | None = None,
    ) -> None:
        super().__init__(spec, config.party, data, config.output_dir)
        if data.labels is None:
            raise JobStateError(f"party {config.party} has no label column configured")
        self._tasks = config.tasks
        names = [t.name for t in self._tasks]
        problem = spec.privacy.task_problem(names)
        if problem is not None:
            raise HandshakeError(f"party {config.party}: {problem}")
        self._labels = data.labels
        if not spec.dataset:  # scoring reads no labels
            self.warnings += _label_findings(config, data.labels, self.split)
        # The column label DP and the gradient defense protect (None: the only one).
        self._protected = None
        if len(names) > 1 and spec.privacy.task:
            self._protected = names.index(spec.privacy.task)
        # The labels training sees: randomized response under label DP.
        self._train_labels = self._labels
        if spec.privacy.label_dp:
            rng = generator(spec.seed, LABEL_FLIPS)
            self._train_labels = np.array(self._labels)
            column = self._protected_labels(self._train_labels)
            column[...] = randomized_response(column, spec.privacy.label_epsilon, rng)
        self._timeout = peer_timeout
        self._senders = spec.feature_parties
        self._model = config.model
        self._widths = {p.name: p.output.width for p in spec.parties}
        # Where its own base output stands among the fuse's inputs (none when
        # the party holds labels alone).
        fused = list(fuse_outputs({p.name: p.output for p in spec.parties}))
        own_index = fused.index(config.party) if config.party in fused else None
        base = build_party_base(
            config.party, data.features, self.split.train, config.model, spec.seed
        )
        try:
            fuse = build_fuse(
                {p.name: p.output for p in spec.parties}, config.model, spec.seed
            )
        except ConfigError as exc:
            raise ConfigError(f"{config.source}: {exc}") from None
        self.step = FuseStep(
            base,
            fuse,
            own_index,
            spec.optimizer,
            spec.learning_rate,
            self._tasks,
            summed=spec.secure_aggregation,
        )
        # Secure aggregation: the feature parties' key shares, relayed.
        self.board = (
            ShareBoard(spec, config.party, credentials)
            if spec.secure_aggregation
            else None
        )
        # The fuse's variables follow every party's base output.
        self.model_state = ModelState(
            combined_structure([p.output for p in spec.parties]),
            self.step.state_variables,
            self.step.optimizer.variables,
        )
        self.warm_start(config.output_dir)
        self.mailbox = Mailbox(self._senders)
        self._outbox_lock = threading.Lock()
        self._epoch_metrics = MetricAccumulator(self._tasks)
        self.compressor = Compressor(
            spec.compression, spec.compression_ratio, spec.seed
        )
        # Positions each sender's compressed forward kept, until its gradient goes.
        self._kept: dict[tuple[str, tuple[int, int, int]], np.ndarray | None] = {}
        # Evaluation mode: the tensors received in the last epoch for a sample
        # of the training and validation rows, for a feature-inference harness.
        self.received_probes: dict[int, ReceivedProbe] = {}
        if spec.privacy.leakage_probe:
            for phase, release, rows in (
                (common_pb2.PHASE_TRAIN, "train", self.split.train),
                (common_pb2.PHASE_EVALUATE, "evaluate", self.split.validation),
            ):
                self.received_probes[phase] = ReceivedProbe(
                    self.folder / "leakage",
                    release,
                    rows,
                    data.num_rows,
                    spec.epochs - 1,
                    spec.seed,
                )

    def serving_part(self) -> FuseServing:
        """Its base and fuse; the peers' inputs in the fuse's order (one, the
        sum, under secure aggregation: the exported part takes the plain sum)."""
        step = self.step
        peers = [(p, self._widths[p]) for p in self._senders]
        if step.summed:
            peers = [(SUMMED, peers[0][1])]
        return FuseServing(
            self.data.fitted,
            step.base,
            step.fuse,
            step.own_index,
            peers,
            self._tasks,
            summed=step.summed,
            model=self._model,
        )

    def state(self) -> dict[str, np.ndarray]:
        return {**self.model_state.arrays(), **self._epoch_metrics.state()}

    def checkpoint_state(self, step: int) -> dict[str, np.ndarray]:
        """At an epoch's start no metric is carried over (the epoch's first
        window starts them afresh): the last epoch's scores stay out."""
        if step:
            return self.state()
        empty = MetricAccumulator(self._tasks).state()
        return {**self.model_state.arrays(), **empty}

    def load_state(self, arrays: dict[str, np.ndarray], source: str) -> None:
        try:
            metrics = MetricAccumulator.from_state(arrays, self._tasks)
        except ValueError as exc:
            raise DataError(f"{source}: {exc}; it belongs to another job") from None
        self.model_state.load(arrays, source)
        self._epoch_metrics = metrics

    # Peer side: called by the peer service for each stream and message.

    def open_stream(self, sender: str, hello: peer_pb2.Hello) -> Inbound:
        """A stream of ``sender`` for the pass ``hello`` names; it replaces the
        sender's earlier stream of that pass once it stores a hidden tensor."""
        if sender not in self._senders:
            raise UnknownJobError(
                f"party {sender} is not a feature party of job {self.spec.job_id}"
            )
        if hello.phase not in _PHASES:
            raise InvalidMessageError(
                f"Hello from {sender} names phase {hello.phase}; a peer stream is "
                "for TRAIN, EVALUATE or PREDICT"
            )
        if hello.phase != common_pb2.PHASE_TRAIN:
            split_from_proto(hello.split)  # refuses an unknown split
        return Inbound(sender, hello.phase)

    def accept_share(
        self,
        sender: str,
        share: peer_pb2.KeyShare,
        cancelled: Callable[[], bool],
    ) -> peer_pb2.PeerMessage:
        """Records a feature party's key share; once every feature party's is
        in, the answer relays them all."""
        if self.board is None:
            raise InvalidMessageError(
                f"{sender} sent a key share, but job {self.spec.job_id} does not "
                "aggregate securely"
            )
        shares = self.board.offer(
            key_share_from_proto(share), sender, self._timeout, cancelled
        )
        relayed = peer_pb2.KeyShares(shares=[key_share_to_proto(s) for s in shares])
        return peer_pb2.PeerMessage(key_shares=relayed)

    def accept_forward(
        self, stream: Inbound, hello: peer_pb2.Hello, forward: peer_pb2.Forward
    ) -> None:
        """Validates one hidden tensor against the pass it belongs to and stores it."""
        sender = stream.sender
        key = forward.key
        if key.job_id != self.spec.job_id or key.phase != hello.phase:
            raise InvalidMessageError(
                f"forward for job {key.job_id!r} phase {key.phase} on a stream "
                f"opened for job {self.spec.job_id!r} phase {hello.phase}"
            )
        if not 0 <= key.epoch < self.spec.epochs:
            raise JobStateError(epoch_outside(key.epoch, self.spec.epochs))
        rows, batch = self._pass_size(hello)
        steps = steps_per_epoch(rows, batch)
        if not 0 <= key.step < steps:
            raise JobStateError(
                f"step {key.step} is outside the pass's 0..{steps - 1} (epoch "
                f"{key.epoch + 1})"
            )
        trained = (self.status.epoch, self.status.step)
        if key.phase == common_pb2.PHASE_TRAIN and (key.epoch, key.step) < trained:
            raise JobStateError(
                f"{at(key.epoch, key.step)} was already trained (the job is at "
                f"{at(*trained)})"
            )
        stream.check_next(key.epoch, key.step)
        shape = (batch_length(rows, batch, key.step), self._widths[sender])
        what = f"hidden tensor of {sender} for {at(key.epoch, key.step)}"
        step_key = (key.phase, key.epoch, key.step)
        if self.board is not None:
            self.mailbox.put(
                stream,
                step_key,
                self._unmasked_part(forward, shape, what),
                self._timeout,
            )
            stream.last = (key.epoch, key.step)
            return
        if forward.HasField("masked"):
            raise InvalidMessageError(
                f"{what}: masked, but this job does not aggregate securely"
            )
        compressor = self.compressor
        if key.phase != common_pb2.PHASE_TRAIN:
            compressor = compressor.for_evaluation()
        if compressor.method == "none":
            if forward.HasField("compressed"):
                raise InvalidMessageError(
                    f"{what}: this job sends tensors uncompressed"
                )
            hidden = tensor_from_proto(
                forward.hidden, shape=shape, dtype=np.float32, what=what
            )
        else:
            if not forward.HasField("compressed"):
                raise InvalidMessageError(
                    f"{what}: this job compresses with {compressor.method}"
                )
            packed = compressed_from_proto(
                forward.compressed, compressor, shape, gradient=False, what=what
            )
            hidden, positions = compressor.decompress(packed, step_key)
            if key.phase == common_pb2.PHASE_TRAIN:
                with self._outbox_lock:
                    self._kept[(sender, step_key)] = positions
        self.mailbox.put(stream, step_key, hidden, self._timeout)
        stream.last = (key.epoch, key.step)

    def _unmasked_part(
        self, forward: peer_pb2.Forward, shape: tuple[int, int], what: str
    ) -> np.ndarray:
        """A masked forward's values, checked: masked with the job's shares."""
        assert self.board is not None
        if not forward.HasField("masked"):
            raise InvalidMessageError(
                f"{what}: this job aggregates securely; send the tensor masked"
            )
        values, keys = masked_from_proto(forward.masked, shape, what)
        if keys != self.board.digest:
            raise InvalidMessageError(
                f"{what}: masked with other key shares than the job's (a feature "
                "party restarted with a new key?); its masks would not cancel"
            )
        return values

    def _peer_inputs(self, received: list[np.ndarray]) -> list[np.ndarray]:
        """What the fuse takes from the feature parties: their tensors, or under
        secure aggregation the one sum their masked tensors add up to."""
        if self.board is None:
            return received
        return [fixed_point.decode(fixed_point.add(received))]

    def _pass_size(self, hello: peer_pb2.Hello) -> tuple[int, int]:
        """Rows and batch size of the pass a stream's messages belong to."""
        if hello.phase == common_pb2.PHASE_TRAIN:
            return self.split.train.size, self.spec.batch_size
        rows = self.split_size(split_from_proto(hello.split))
        return rows, eval_batch_size(self.spec.batch_size)

    # Control side: called by the control service.

    def run_window(
        self,
        epoch: int,
        first_step: int,
        num_steps: int,
        report_every: int,
        cancelled: threading.Event,
    ) -> Iterator[Progress]:
        self.check_window(epoch, first_step, num_steps)
        with self.exclusive("training"):
            if first_step == 0:
                self._epoch_metrics = MetricAccumulator(self._tasks)
            training_probe = self.received_probes.get(common_pb2.PHASE_TRAIN)
            if training_probe is not None:
                training_probe.clear()
            train = self.train_pass(epoch)
            started, samples = time.monotonic(), 0
            end = first_step + num_steps
            with train.prepared(self.data.features.take, first_step, end) as ready:
                for step in range(first_step, end):
                    samples += self._train_step(ready, epoch, step, cancelled)
                    self.status.epoch, self.status.step = epoch, step + 1
                    done = step + 1 == end
                    if done and training_probe is not None:
                        training_probe.flush(epoch, first_step, step)
                    if done or (step + 1 - first_step) % report_every == 0:
                        self.note_speed(samples, started)
                        metrics = self._running(step + 1 == train.steps)
                        yield Progress(epoch, step + 1, samples, metrics)

    def _running(self, epoch_done: bool) -> Metrics:
        if epoch_done:
            metrics = self._epoch_metrics.result()
            self.status.last_metrics = metrics
            return metrics
        return self._epoch_metrics.running()

    def _train_step(
        self,
        ready: PreparedBatches,
        epoch: int,
        step: int,
        cancelled: threading.Event,
    ) -> int:
        key = (common_pb2.PHASE_TRAIN, epoch, step)
        hiddens = self._peer_inputs(self.mailbox.take(key, self._timeout, cancelled))
        taken = time.monotonic()
        batch = ready.get(step)
        rows = batch.rows
        self._record_received(common_pb2.PHASE_TRAIN, epoch, rows, hiddens)
        labels = self._train_labels[rows]
        loss, losses, scores, grads = self.step.train(batch.inputs, hiddens, labels)
        step_key = common_pb2.StepKey(
            job_id=self.spec.job_id,
            phase=common_pb2.PHASE_TRAIN,
            epoch=epoch,
            step=step,
        )
        if self.board is not None:
            # One gradient of the sum, the same for every feature party.
            grads = list(grads) * len(self._senders)
        with self._outbox_lock:
            for sender, grad in zip(self._senders, grads, strict=True):
                gradient = self._defended(sender, epoch, step, grad.numpy(), labels)
                message = self._backward(sender, key, step_key, gradient)
                now = time.monotonic()
                backward = message.backward
                backward.held_micros = _micros(now - self.mailbox.arrived[sender])
                backward.compute_micros = _micros(now - taken)
                outbox = self.mailbox.answering(sender, common_pb2.PHASE_TRAIN)
                if outbox is None:
                    raise PeerError(f"{sender} has no open training stream to answer")
                outbox.put(message)
        self._epoch_metrics.add(labels, scores.numpy(), float(loss), losses.numpy())
        return int(rows.size)

    def _record_received(
        self, phase: int, epoch: int, rows: np.ndarray, hiddens: list[np.ndarray]
    ) -> None:
        """Evaluation mode: keeps what the fuse took from the feature parties
        for these rows (under secure aggregation, the one sum)."""
        probe = self.received_probes.get(phase)
        if probe is not None:
            names = self._senders if self.board is None else ["sum"]
            received = dict(zip(names, hiddens, strict=True))
            probe.record(epoch, rows, self.data.ids[rows], received)

    def _protected_labels(self, labels: np.ndarray) -> np.ndarray:
        """The column of ``labels`` (a view) that privacy protects."""
        return labels if self._protected is None else labels[:, self._protected]

    def _defended(
        self,
        sender: str,
        epoch: int,
        step: int,
        gradient: np.ndarray,
        labels: np.ndarray,
    ) -> np.ndarray:
        """The gradient for ``sender`` after the job's gradient defense."""
        privacy = self.spec.privacy
        if privacy.gradient_defense == "none":
            return gradient
        # Under secure aggregation every feature party gets the same gradient.
        index = 0 if self.board is not None else self._senders.index(sender)
        rng = generator(self.spec.seed, GRADIENT_NOISE, index, epoch, step)
        return defend(
            gradient,
            self._protected_labels(labels),
            privacy.gradient_defense,
            privacy.defense_scale,
            rng,
        )

    def _backward(
        self,
        sender: str,
        key: tuple[int, int, int],
        step_key: common_pb2.StepKey,
        gradient: np.ndarray,
    ) -> peer_pb2.PeerMessage:
        """The gradient message, through the forward's mask when compressed."""
        if self.compressor.method == "none":
            return backward_to_proto(step_key, gradient)
        positions = self._kept.pop((sender, key), None)
        packed = self.compressor.compress_gradient(gradient, positions)
        backward = peer_pb2.Backward(
            key=step_key, compressed=compressed_to_proto(packed)
        )
        return peer_pb2.PeerMessage(backward=backward)

    def _score(
        self, phase: int, epoch: int, split: str, cancelled: threading.Event
    ) -> tuple[Pass, np.ndarray]:
        read = self.read_pass(split)
        scores = np.empty((read.rows.size, *self._labels.shape[1:]), np.float32)
        probe = self.received_probes.get(phase)
        if probe is not None:
            probe.clear()
        ready = read.prepared(self.data.features.take)
        try:
            for step in range(read.steps):
                hiddens = self._peer_inputs(
                    self.mailbox.take((phase, epoch, step), self._timeout, cancelled)
                )
                batch = ready.get(step)
                rows = batch.rows
                self._record_received(phase, epoch, rows, hiddens)
                found = self.step.predict(batch.inputs, hiddens).numpy()
                scores[step * read.batch_size : step * read.batch_size + rows.size] = (
                    found
                )
        finally:
            ready.close()
            self.mailbox.end_pass(phase)
        if probe is not None:
            probe.flush(epoch, 0, read.steps - 1)
        return read, scores

    def evaluate(
        self, epoch: int, split: str, cancelled: threading.Event
    ) -> Evaluation:
        with self.exclusive("evaluating"):
            read, scores = self._score(
                common_pb2.PHASE_EVALUATE, epoch, split, cancelled
            )
            metrics = task_metrics(self._tasks, self._labels[read.rows], scores)
            self.status.last_metrics = metrics
            return Evaluation(int(read.rows.size), metrics)

    def predict(self, epoch: int, split: str, cancelled: threading.Event) -> int:
        """Writes the split's rows' scores to the party's own output folder
        (``ID,score``; ``ID,score_<task>,...`` for several tasks)."""
        with self.exclusive("predicting"):
            read, scores = self._score(
                common_pb2.PHASE_PREDICT, epoch, split, cancelled
            )
            path = self.folder / f"predictions-{split}.csv"
            names = [t.name for t in self._tasks] if scores.ndim > 1 else []
            write_scores(path, self.data.ids[read.rows], scores, names)
            logger.info("wrote %d rows of scores to %s", read.rows.size, path)
            return int(read.rows.size)

    def close(self) -> None:
        super().close()
        self.mailbox.fail(UnknownJobError(f"job {self.spec.job_id} has ended"))


def _micros(seconds: float) -> int:
    """A duration as whole microseconds, within fixed32 and at least 1 (a
    field of 0 would not be sent: the message's size would vary)."""
    return min(max(1, round(seconds * 1e6)), 2**32 - 1)


def _positives(labels: RowColumn, rows: np.ndarray) -> np.ndarray:
    """Each task's count of positive labels among ``rows`` (read in chunks)."""
    step = 1_000_000
    parts = [labels[rows[i : i + step]] for i in range(0, rows.size, step)]
    sums = [p.reshape(p.shape[0], -1).sum(axis=0, dtype=np.int64) for p in parts]
    return np.sum(sums, axis=0) if sums else np.zeros(1, np.int64)


def _label_findings(
    config: PartyConfig, labels: RowColumn, split: RowSplit
) -> list[str]:
    """Refuses training labels of one class; warns of validation labels of one
    (each task's, for several)."""
    found = []
    counts = {
        "training": _positives(labels, split.train),
        "validation": _positives(labels, split.validation),
    }
    for index, label in enumerate(config.labels):
        task = f"the label ({label.rule})"
        if len(config.labels) > 1:
            task = f"label {label.name!r} ({label.rule})"
        for name, rows in (("training", split.train), ("validation", split.validation)):
            positives = int(counts[name][index]) if rows.size else 0
            if 0 < positives < rows.size:
                continue
            value = "1" if positives else "0"
            message = (
                f"party {config.party}: {task} is {value} for every one of the "
                f"{rows.size} {name} rows"
            )
            if name == "training":
                raise DataError(
                    f"{message}; a model cannot learn from one class. Check "
                    f"{label.key}.{label.rule_key} in {config.source} and the data file"
                )
            found.append(f"{message}, so validation AUC is undefined")
    return found


def write_scores(
    path: Path, ids: np.ndarray, scores: np.ndarray, tasks: list[str] | None = None
) -> None:
    """Writes ``ID,score`` lines atomically; with ``tasks``, one score column per
    task (``ID,score_<task>,...``)."""
    header = ["ID", *(f"score_{t}" for t in tasks)] if tasks else ["ID", "score"]
    rows = (
        ",".join([str(i), *(f"{v:.6f}" for v in row)]) + "\n"
        for i, row in zip(
            ids.tolist(), scores.reshape(ids.size, -1).tolist(), strict=True
        )
    )
    write_atomically(path, ",".join(header) + "\n" + "".join(rows))
