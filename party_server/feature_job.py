"""A feature party's job: its base model, driven by the label party's gradients."""

from __future__ import annotations

import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np

from splitrec.common.compression import Compressor
from splitrec.common.errors import ConfigError, JobStateError, PeerError
from splitrec.common.pipeline_plan import DECIDE_EVERY
from splitrec.common.positions import at
from splitrec.common.seeds import derive_seed
from splitrec.common.traffic import TrafficCounter
from splitrec.config.jobspec import JobSpec
from splitrec.config.party import PartyConfig
from splitrec.models.build import build_party_base
from splitrec.models.features import PackedBatch
from splitrec.models.serving import BaseServing
from splitrec.models.steps import BaseStep
from splitrec.party_server.checkpoints import ModelState
from splitrec.party_server.data_slice import DataSlice
from splitrec.party_server.job_base import Evaluation, PartyJob, Progress
from splitrec.party_server.leakage_probe import LeakageProbe
from splitrec.party_server.peer_client import PeerStream
from splitrec.party_server.pipeline_depth import (
    WAITED,
    DepthController,
    DepthPlan,
    StepTiming,
    plan_file,
)
from splitrec.party_server.prepared_batches import PreparedBatches, ReadyBatch
from splitrec.party_server.secure_sums import PairwiseMasking
from splitrec.privacy.mechanisms import (
    EMBEDDING_NOISE,
    MID_NOISE,
    add_gaussian,
    generator,
)
from splitrec.privacy.mid import Bottleneck
from splitrec.privacy.secure_aggregation.masks import MaskContext
from splitrec.security.tls import Credentials
from splitrec.v1 import common_pb2, peer_pb2
from splitrec.wire.serde import (
    compressed_from_proto,
    compressed_to_proto,
    forward_to_proto,
    key_share_from_proto,
    key_share_to_proto,
    masked_to_proto,
    split_to_proto,
    tensor_from_proto,
)


@dataclass(frozen=True)
class _InFlight:
    """A step whose hidden tensor was sent and whose gradient is awaited."""

    epoch: int
    step: int
    inputs: PackedBatch
    shape: tuple[int, ...]
    rows: np.ndarray
    # Flat positions the compressed forward kept (sparsifiers only).
    positions: np.ndarray | None = None
    # When it was handed to the stream (time.monotonic).
    sent_at: float = 0.0
    # MID's code noise of its forward (None without MID).
    noise: np.ndarray | None = None


def _joined(
    group: list[tuple[_InFlight, np.ndarray]],
) -> tuple[PackedBatch, np.ndarray, np.ndarray | None]:
    """The inputs, gradients and code noises of a group of steps, one after
    another."""
    if len(group) == 1:
        sent, gradient = group[0]
        return sent.inputs, gradient, sent.noise
    batches = [sent.inputs for sent, _ in group]
    joined = PackedBatch(
        np.concatenate([b.indices for b in batches]),
        np.concatenate([b.dense for b in batches]),
        np.concatenate([b.numeric for b in batches]),
    )
    noises = [sent.noise for sent, _ in group]
    noise = None if noises[0] is None else np.concatenate(noises)
    return joined, np.concatenate([gradient for _, gradient in group]), noise


class FeatureJob(PartyJob):
    """Forward to the label party, backward from the gradient it returns."""

    def __init__(
        self,
        spec: JobSpec,
        config: PartyConfig,
        data: DataSlice,
        label_channel: grpc.Channel,
        peer_timeout: float,
        traffic: TrafficCounter,
        credentials: Credentials | None = None,
    ) -> None:
        super().__init__(spec, config.party, data, config.output_dir)
        self.max_user_rows = self._user_rows(config)
        self._party = config.party
        self._model = config.model
        self._channel = label_channel
        self._timeout = peer_timeout
        self._traffic = traffic
        base = build_party_base(
            config.party, data.features, self.split.train, config.model, spec.seed
        )
        privacy = spec.privacy
        bottleneck = (
            Bottleneck(
                base.output_spec.width,
                privacy.mid_dim,
                derive_seed(spec.seed, "mid", config.party),
                name="mid",
            )
            if privacy.mid
            else None
        )
        self.step = BaseStep(
            base,
            spec.optimizer,
            spec.learning_rate,
            privacy.clip_norm,
            nopeek=privacy.nopeek,
            predict=spec.compensation == "predict",
            bottleneck=bottleneck,
            mid_weight=privacy.mid_weight,
        )
        self.model_state = ModelState(
            base.output_spec.structure,
            self.step.state_variables,
            self.step.optimizer.variables,
            self.step.velocity,
        )
        # The last step whose update is applied (in the running window's epoch).
        self._applied = -1
        # Under pipeline_size auto: the depth chosen at each control point.
        self._controller = (
            DepthController(spec.pipeline_size) if spec.pipeline_auto else None
        )
        self._plan = DepthPlan(plan_file(self.folder), spec.plan_of(config.party))
        self._point, self._point_depth = -1, 1
        # Async strategy: the steps of the running group and their gradients.
        self._group: list[tuple[_InFlight, np.ndarray]] = []
        self._window_end = 0
        self.warm_start(config.output_dir)
        self._training_stream: PeerStream | None = None
        self.compressor = Compressor(
            spec.compression, spec.compression_ratio, spec.seed
        )
        self._index = spec.position(config.party)
        # Secure aggregation: this party's job key and masks.
        self.masking = (
            PairwiseMasking(
                spec,
                config.party,
                data,
                self.folder / "secure-aggregation.key",
                credentials,
            )
            if spec.secure_aggregation
            else None
        )
        self.probe = (
            LeakageProbe(self.folder / "leakage")
            if spec.privacy.leakage_probe
            else None
        )

    def _user_rows(self, config: PartyConfig) -> int:
        """The most training rows about one user, when the job accounts
        embedding DP per user (0 otherwise); refused without a user column."""
        privacy = self.spec.privacy
        if self.spec.dataset or not (privacy.embedding_dp and privacy.dp_per_user):
            return 0
        if self.data.users is None:
            raise ConfigError(
                f"party {config.party}: job {self.spec.job_id} accounts embedding DP "
                "per user (privacy.embedding_dp.per_user) and "
                f"{config.source or 'the party config'} names no data.user_column; "
                "add the column that names whom each row is about"
            )
        return self.data.max_user_rows(self.split.train)

    def serving_part(self) -> BaseServing:
        return BaseServing(
            self.data.fitted,
            self.step.model,
            self.spec.privacy.clip_norm,
            self._model,
            self.step.bottleneck,
        )

    def state(self) -> dict[str, np.ndarray]:
        return self.model_state.arrays()

    def load_state(self, arrays: dict[str, np.ndarray], source: str) -> None:
        self.model_state.load(arrays, source)
        if self._controller is not None:
            # The steps to come repeat the depths chosen for them before.
            self._plan.reload()
            self._point = -1

    def _open(self, phase: int, split: str = "") -> PeerStream:
        hello = peer_pb2.Hello(job_id=self.spec.job_id, party=self._party, phase=phase)
        if split:
            hello.split = split_to_proto(split)
        stream = PeerStream(
            self._channel, self.spec.label_party, hello, self._traffic, self._timeout
        )
        if self.masking is not None:
            try:
                self._agree_keys(stream)
            except BaseException:
                stream.cancel()
                raise
        return stream

    def _agree_keys(self, stream: PeerStream) -> None:
        """Sends this party's key share and checks every share relayed back."""
        assert self.masking is not None
        share = key_share_to_proto(self.masking.share)
        stream.send(peer_pb2.PeerMessage(key_share=share))
        reply = stream.receive()
        if reply.WhichOneof("kind") != "key_shares":
            raise PeerError(
                f"{self.spec.label_party} sent {reply.WhichOneof('kind')}, expected "
                "the job's key shares"
            )
        self.masking.accept([key_share_from_proto(m) for m in reply.key_shares.shares])

    def _forward_message(
        self, phase: int, epoch: int, step: int, hidden: np.ndarray, split: str = ""
    ) -> tuple[peer_pb2.PeerMessage, np.ndarray | None]:
        """The forward message, compressed or masked as the job says, and the
        positions a sparsifier kept (for the gradient that comes back)."""
        key = common_pb2.StepKey(
            job_id=self.spec.job_id, phase=phase, epoch=epoch, step=step
        )
        if self.masking is not None:
            context = MaskContext(
                phase, epoch, step, split_to_proto(split) if split else 0
            )
            what = f"hidden tensor of {at(epoch, step)}"
            values, keys = self.masking.mask(hidden, context, what)
            forward = peer_pb2.Forward(key=key, masked=masked_to_proto(values, keys))
            return peer_pb2.PeerMessage(forward=forward), None
        compressor = self.compressor
        if phase != common_pb2.PHASE_TRAIN:
            compressor = compressor.for_evaluation()
        if compressor.method == "none":
            return forward_to_proto(key, hidden), None
        step_key = (phase, epoch, step)
        packed = compressor.compress(hidden, step_key)
        forward = peer_pb2.Forward(key=key, compressed=compressed_to_proto(packed))
        positions = compressor.positions_of(packed, step_key)
        return peer_pb2.PeerMessage(forward=forward), positions

    def run_window(
        self,
        epoch: int,
        first_step: int,
        num_steps: int,
        report_every: int,
        cancelled: threading.Event,
    ) -> Iterator[Progress]:
        """Trains a window, keeping up to ``pipeline_size`` forwards in flight.

        With a pipeline size of 1 every forward waits for the previous step's
        update: training is exact. With K > 1 the forward of step s uses weights
        that lack the last K - 1 updates (stale by at most K - 1 steps). The
        job's first ``pipeline_warmup_steps`` steps always run exact. Under
        ``pipeline_auto`` the depth is chosen every few steps from the measured
        round trip (see ``pipeline_depth``).
        """
        self.check_window(epoch, first_step, num_steps)
        with self.exclusive("training"):
            if self.probe is not None:
                self.probe.clear()
            train = self.train_pass(epoch)
            stream = self._open(common_pb2.PHASE_TRAIN)
            self._training_stream = stream
            end = first_step + num_steps
            in_flight: deque[_InFlight] = deque()
            started, samples = time.monotonic(), 0
            self._applied = first_step - 1
            self._window_end, self._group = end, []
            previous: float | None = None
            ready = train.prepared(self.data.features.take, first_step, end)
            try:
                limit = self._limit(epoch, first_step)
                next_send = self._fill(
                    stream, ready, epoch, in_flight, first_step, limit
                )
                for step in range(first_step, end):
                    if cancelled.is_set():
                        raise JobStateError("the window was cancelled")
                    sent = in_flight.popleft()
                    asked = time.monotonic()
                    gradient, label_times = self._receive_gradient(stream, sent)
                    got = time.monotonic()
                    limit = self._limit(epoch, step + 1)
                    batch = ready.get(next_send) if next_send < limit else None
                    follow_up = self._update_and_send(
                        stream, sent, gradient, next_send, batch
                    )
                    if follow_up is not None:
                        in_flight.append(follow_up)
                        next_send += 1
                    next_send = self._fill(
                        stream, ready, epoch, in_flight, next_send, limit
                    )
                    if self._controller is not None:
                        self._observe(sent, label_times, asked, got, previous)
                    previous = got
                    samples += sent.shape[0]
                    self.status.epoch, self.status.step = epoch, step + 1
                    if step + 1 == end:
                        stream.close()
                        if self.probe is not None:
                            self.probe.flush(epoch, first_step, end - 1)
                    if step + 1 == end or (step + 1 - first_step) % report_every == 0:
                        self.note_speed(samples, started)
                        traffic = stream.traffic.snapshot()
                        yield Progress(epoch, step + 1, samples, traffic=traffic)
            except BaseException:
                stream.cancel()
                raise
            finally:
                ready.close()
                self._training_stream = None

    def close(self) -> None:
        """Ends the job; a running training window stops at once."""
        super().close()
        stream = self._training_stream
        if stream is not None:
            stream.cancel()

    def _limit(self, epoch: int, step: int) -> int:
        """The step forwards may be sent up to (not including) once the steps
        before ``step`` are done: ``step`` and the depth after it, and under
        the async strategy the rest of that last step's group (its forwards
        wait for no update)."""
        last = step + self._depth(epoch, step) - 1
        if self.spec.strategy == "async":
            done = epoch * self.steps_per_epoch + last
            last += self.spec.local_steps - 1 - done % self.spec.local_steps
        return min(self._window_end, last + 1)

    def _depth(self, epoch: int, step: int) -> int:
        """How many forwards may be in flight from ``step`` on (1 while warming up)."""
        done = epoch * self.steps_per_epoch + step
        if done < self.spec.pipeline_warmup_steps:
            return 1
        if self._controller is None:
            return self.spec.pipeline_size
        point = done - done % DECIDE_EVERY
        if point != self._point:
            depth = self._plan.get(point)
            if depth is None:
                depth = self._controller.decide()
                self._plan.record(point, depth)
            else:
                self._controller.follow(depth)
            self._point = point
            self._point_depth = min(depth, self.spec.pipeline_size)
            self.status.pipeline_depth = self._point_depth
        return self._point_depth

    def _observe(
        self,
        sent: _InFlight,
        label_times: tuple[float, float],
        asked: float,
        got: float,
        previous: float | None,
    ) -> None:
        """Feeds one step's timings to the depth controller."""
        assert self._controller is not None
        held, label = label_times
        self._controller.observe(
            StepTiming(
                network=got - sent.sent_at - held,
                waited=got - asked > WAITED,
                label=label,
                feature=time.monotonic() - got,
                period=None if previous is None else got - previous,
            )
        )

    def _fill(
        self,
        stream: PeerStream,
        ready: PreparedBatches,
        epoch: int,
        in_flight: deque[_InFlight],
        next_send: int,
        limit: int,
    ) -> int:
        """Sends forwards up to (not including) step ``limit``; returns the next."""
        while next_send < limit:
            in_flight.append(self._send(stream, epoch, next_send, ready.get(next_send)))
            next_send += 1
        self.status.in_flight_peak = max(self.status.in_flight_peak, len(in_flight))
        return next_send

    def _update_and_send(
        self,
        stream: PeerStream,
        sent: _InFlight,
        gradient: np.ndarray,
        following: int,
        batch: ReadyBatch | None,
    ) -> _InFlight | None:
        """Applies the gradient of ``sent``; then sends step ``following`` if any.

        Both happen in one compiled call: the next forward sees the new weights.
        Under the async strategy the gradients of a group of steps are applied
        together, as one update, when the group's last one is in.
        """
        if self.probe is not None:
            self.probe.record(sent.step, self.data.ids[sent.rows], gradient)
        inputs = sent.inputs
        if self.spec.strategy == "async":
            self._group.append((sent, gradient))
            if not self._ends_group(sent.epoch, sent.step):
                if batch is None:
                    return None
                return self._send(stream, sent.epoch, following, batch)
            inputs, gradient, noise = _joined(self._group)
            self._group = []
        else:
            noise = sent.noise
        self._applied = sent.step
        if batch is None:
            self.step.backward(inputs, gradient, noise)
            return None
        next_noise = self._code_noise(sent.epoch, following, len(batch.rows))
        hidden = self.step.backward_then_forward(
            inputs,
            gradient,
            batch.inputs,
            ahead=self._missing(sent.epoch, following),
            noise=noise,
            next_noise=next_noise,
        )
        return self._send_hidden(
            stream, sent.epoch, following, batch, hidden, next_noise
        )

    def _ends_group(self, epoch: int, step: int) -> bool:
        """Whether the async strategy updates after ``step``: at the end of each
        group of ``local_steps`` steps of the job, and at a window's end."""
        done = epoch * self.steps_per_epoch + step + 1
        return done % self.spec.local_steps == 0 or step + 1 == self._window_end

    def _missing(self, epoch: int, step: int) -> int:
        """Updates the forward of ``step`` lacks: those after the last applied
        one that an exact run would have made before it."""
        if self.spec.strategy != "async":
            return step - 1 - self._applied
        return sum(
            self._ends_group(epoch, earlier)
            for earlier in range(self._applied + 1, step)
        )

    def _send(
        self, stream: PeerStream, epoch: int, step: int, batch: ReadyBatch
    ) -> _InFlight:
        noise = self._code_noise(epoch, step, len(batch.rows))
        hidden = self.step.forward(
            batch.inputs, ahead=self._missing(epoch, step), noise=noise
        )
        return self._send_hidden(stream, epoch, step, batch, hidden, noise)

    def _send_hidden(
        self,
        stream: PeerStream,
        epoch: int,
        step: int,
        batch: ReadyBatch,
        hidden: object,
        noise: np.ndarray | None,
    ) -> _InFlight:
        array = self._with_noise(hidden.numpy(), epoch, step)
        message, positions = self._forward_message(
            common_pb2.PHASE_TRAIN, epoch, step, array
        )
        stream.send(message)
        return _InFlight(
            epoch,
            step,
            batch.inputs,
            array.shape,
            batch.rows,
            positions,
            time.monotonic(),
            noise,
        )

    def _code_noise(
        self, epoch: int, step: int, rows: int, *release: int
    ) -> np.ndarray | None:
        """MID's code noise for a training step, keyed by its epoch and step
        (another pass's, ``release``: its phase and split, draws its own; None
        without MID)."""
        if self.step.bottleneck is None:
            return None
        key = (self._index, epoch, step, *release)
        rng = generator(self.spec.seed, MID_NOISE, *key)
        return rng.standard_normal((rows, self.step.noise_width), dtype=np.float32)

    def _with_noise(
        self, hidden: np.ndarray, epoch: int, step: int, *release: int
    ) -> np.ndarray:
        """Embedding DP: the rows are already clipped by the model; Gaussian noise
        of standard deviation σ·C is added before they leave the party. A
        training forward's noise is keyed by its epoch and step; another pass's
        (``release``: its phase and split) draws its own."""
        privacy = self.spec.privacy
        if not privacy.embedding_dp or privacy.noise_multiplier <= 0:
            return hidden
        key = (self._index, epoch, step, *release)
        rng = generator(self.spec.seed, EMBEDDING_NOISE, *key)
        return add_gaussian(hidden, privacy.noise_multiplier * privacy.clip_norm, rng)

    def _receive_gradient(
        self, stream: PeerStream, sent: _InFlight
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """The gradient of ``sent``, and how long the label party held the
        step and computed it (seconds)."""
        reply = stream.receive()
        if reply.WhichOneof("kind") != "backward":
            raise PeerError(
                f"{self.spec.label_party} sent {reply.WhichOneof('kind')}, "
                "expected a gradient"
            )
        key = reply.backward.key
        if (key.epoch, key.step) != (sent.epoch, sent.step):
            raise PeerError(
                f"{self.spec.label_party} sent the gradient of "
                f"{at(key.epoch, key.step)}, expected {at(sent.epoch, sent.step)}"
            )
        times = (reply.backward.held_micros / 1e6, reply.backward.compute_micros / 1e6)
        if self.compressor.method == "none":
            gradient = tensor_from_proto(
                reply.backward.gradient,
                shape=sent.shape,
                dtype=np.float32,
                what="gradient",
            )
            return gradient, times
        packed = compressed_from_proto(
            reply.backward.compressed,
            self.compressor,
            sent.shape,
            gradient=True,
            what=f"gradient of {at(sent.epoch, sent.step)}",
        )
        return self.compressor.decompress_gradient(packed, sent.positions), times

    def evaluate(
        self, epoch: int, split: str, cancelled: threading.Event
    ) -> Evaluation:
        """Sends the split's hidden tensors; the label party computes the metrics."""
        rows = self._forward_pass(common_pb2.PHASE_EVALUATE, epoch, split, cancelled)
        return Evaluation(rows, None)

    def predict(self, epoch: int, split: str, cancelled: threading.Event) -> int:
        """Sends the split's hidden tensors; the label party writes the scores."""
        return self._forward_pass(common_pb2.PHASE_PREDICT, epoch, split, cancelled)

    def _forward_pass(
        self, phase: int, epoch: int, split: str, cancelled: threading.Event
    ) -> int:
        with self.exclusive(
            "evaluating" if phase == common_pb2.PHASE_EVALUATE else "predicting"
        ):
            read = self.read_pass(split)
            stream = self._open(phase, split)
            ready = read.prepared(self.data.features.take)
            try:
                for step in range(read.steps):
                    if cancelled.is_set():
                        raise JobStateError("the pass was cancelled")
                    batch = ready.get(step)
                    key = (phase, zlib.crc32(split.encode()))
                    noise = None
                    if self.spec.privacy.mid_samples_every_release:
                        noise = self._code_noise(epoch, step, len(batch.rows), *key)
                    hidden = self.step.forward(batch.inputs, noise=noise).numpy()
                    if self.spec.privacy.noises_every_release:
                        hidden = self._with_noise(hidden, epoch, step, *key)
                    message = self._forward_message(phase, epoch, step, hidden, split)
                    stream.send(message[0])
                stream.close()
            except BaseException:
                stream.cancel()
                raise
            finally:
                ready.close()
            return int(read.rows.size)
