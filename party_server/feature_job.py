"""A feature party's job: its base model, driven by the label party's gradients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np

from common.config import PartyConfig
from common.errors import JobStateError, PeerError
from common.jobspec import JobSpec
from common.models.build import build_base
from common.models.steps import BaseStep
from common.serde import split_to_proto, tensor_from_proto, tensor_to_proto
from party_server.data_slice import DataSlice
from party_server.job_base import Evaluation, PartyJob, Pass, Progress
from party_server.peer_client import PeerStream
from splitrec.v1 import common_pb2, peer_pb2


class FeatureJob(PartyJob):
    """Forward to the label party, backward from the gradient it returns."""

    def __init__(
        self,
        spec: JobSpec,
        config: PartyConfig,
        data: DataSlice,
        label_channel: grpc.Channel,
        peer_timeout: float,
    ) -> None:
        super().__init__(spec, data)
        self._party = config.party
        self._channel = label_channel
        self._timeout = peer_timeout
        base = build_base(config.party, data.features.shapes, config.model, spec.seed)
        self.step = BaseStep(base, spec.optimizer, spec.learning_rate)

    def _open(self, phase: int, split: str = "") -> PeerStream:
        hello = peer_pb2.Hello(job_id=self.spec.job_id, party=self._party, phase=phase)
        if split:
            hello.split = split_to_proto(split)
        return PeerStream(self._channel, self.spec.label_party, hello)

    def _forward(self, phase: int, epoch: int, step: int, rows: np.ndarray) -> tuple:
        inputs = self.data.features.take(rows)
        hidden = self.step.forward(inputs).numpy()
        key = common_pb2.StepKey(
            job_id=self.spec.job_id, phase=phase, epoch=epoch, step=step
        )
        message = peer_pb2.PeerMessage(
            forward=peer_pb2.Forward(key=key, hidden=tensor_to_proto(hidden))
        )
        return inputs, hidden, message

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
            train = self.train_pass(epoch)
            stream = self._open(common_pb2.PHASE_TRAIN)
            started, samples = time.monotonic(), 0
            try:
                for step in range(first_step, first_step + num_steps):
                    if cancelled.is_set():
                        raise JobStateError("the window was cancelled")
                    samples += self._train_step(stream, train, epoch, step)
                    self.status.epoch, self.status.step = epoch, step + 1
                    done = step + 1 == first_step + num_steps
                    if done or (step + 1 - first_step) % report_every == 0:
                        self.note_speed(samples, started)
                        yield Progress(epoch, step + 1, samples)
                stream.close(self._timeout)
            except BaseException:
                stream.cancel()
                raise

    def _train_step(
        self, stream: PeerStream, train: Pass, epoch: int, step: int
    ) -> int:
        rows = train.batch(step)
        inputs, hidden, message = self._forward(
            common_pb2.PHASE_TRAIN, epoch, step, rows
        )
        stream.send(message)
        reply = stream.receive(self._timeout)
        if reply.WhichOneof("kind") != "backward":
            raise PeerError(
                f"{self.spec.label_party} sent {reply.WhichOneof('kind')}, "
                "expected a gradient"
            )
        key = reply.backward.key
        if (key.epoch, key.step) != (epoch, step):
            raise PeerError(
                f"{self.spec.label_party} sent the gradient of epoch {key.epoch} step "
                f"{key.step}, expected epoch {epoch} step {step}"
            )
        gradient = tensor_from_proto(
            reply.backward.gradient,
            shape=hidden.shape,
            dtype=np.float32,
            what="gradient",
        )
        self.step.backward(inputs, gradient)
        return int(rows.size)

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
            try:
                for step in range(read.steps):
                    if cancelled.is_set():
                        raise JobStateError("the pass was cancelled")
                    stream.send(self._forward(phase, epoch, step, read.batch(step))[2])
                stream.close(self._timeout)
            except BaseException:
                stream.cancel()
                raise
            return int(read.rows.size)
