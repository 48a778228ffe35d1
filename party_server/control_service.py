"""The control service: what the coordinator may ask of a party."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator

import grpc

from splitrec.common.errors import ConfigError
from splitrec.config.jobspec import PartExport
from splitrec.party_server.label_serving import LabelServing
from splitrec.party_server.ownership import HEARTBEAT_SECONDS
from splitrec.party_server.part_serving import PartServing
from splitrec.party_server.party import Party, check_job_id
from splitrec.party_server.status_codes import rpc_method
from splitrec.v1 import control_pb2, control_pb2_grpc
from splitrec.wire import serde

# How long a version switch waits for the feature parties without a deadline.
SWITCH_TIMEOUT = 120.0


def _cancel_event(context: grpc.ServicerContext) -> threading.Event:
    cancelled = threading.Event()
    context.add_callback(cancelled.set)
    return cancelled


def _close_on_termination(
    context: grpc.ServicerContext, generator: Iterator[object]
) -> None:
    """gRPC stops iterating a cancelled streaming call without closing its
    generator; a window suspended at ``yield`` would keep its job busy (lock and
    peer stream) until garbage collection. Close it as soon as the call ends."""

    def close() -> None:
        # ValueError: running now; it sees the cancel event at its next step.
        with contextlib.suppress(ValueError):
            generator.close()

    context.add_callback(close)


class ControlService(control_pb2_grpc.ControlServicer):
    def __init__(self, party: Party, serving: PartServing | None = None) -> None:
        self._party = party
        self._serving = serving

    @rpc_method
    def SwitchServing(  # noqa: N802 - gRPC method name
        self, request: control_pb2.SwitchServingRequest, context: grpc.ServicerContext
    ) -> control_pb2.SwitchServingReply:
        serving = self._serving
        if not isinstance(serving, LabelServing):
            raise ConfigError(
                f"party {self._party.config.party} serves no Scoring service (only "
                "a label party with a serving section in its config does)"
            )
        timeout = context.time_remaining()
        previous, digests = serving.switch(
            request.version, SWITCH_TIMEOUT if timeout is None else timeout
        )
        return control_pb2.SwitchServingReply(
            version=request.version, previous=previous, model_digests=digests
        )

    @rpc_method
    def Describe(  # noqa: N802 - gRPC method name
        self, request: control_pb2.DescribeRequest, context: grpc.ServicerContext
    ) -> control_pb2.PartyDescription:
        return serde.description_to_proto(self._party.describe())

    @rpc_method
    def PrepareJob(  # noqa: N802
        self, request: control_pb2.PrepareJobRequest, context: grpc.ServicerContext
    ) -> control_pb2.PrepareJobReply:
        job = self._party.prepare_job(
            serde.job_spec_from_proto(request.job),
            cancelled=lambda: not context.is_active(),
            owner=request.owner,
            attempt=request.attempt,
        )
        return control_pb2.PrepareJobReply(
            train_rows=job.split.train.size,
            validation_rows=job.split.validation.size,
            steps_per_epoch=job.steps_per_epoch,
            aligned_rows=job.data.num_rows,
            alignment_cached=job.alignment_cached,
            warnings=list(job.warnings),
            max_user_rows=job.max_user_rows,
        )

    @rpc_method
    def RunSteps(  # noqa: N802
        self, request: control_pb2.RunStepsRequest, context: grpc.ServicerContext
    ) -> Iterator[control_pb2.StepProgress]:
        job = self._party.owned_job(request.job_id, request.owner)
        window = job.run_window(
            request.epoch,
            request.first_step,
            request.num_steps,
            max(1, request.report_every),
            _cancel_event(context),
        )
        _close_on_termination(context, window)
        for progress in window:
            yield control_pb2.StepProgress(
                epoch=progress.epoch,
                next_step=progress.next_step,
                samples=progress.samples,
                peer_traffic=serde.traffic_to_proto(progress.traffic)
                if progress.traffic is not None
                else None,
                **serde.optional_metrics_to_proto(progress.metrics),
            )

    @rpc_method
    def Evaluate(  # noqa: N802
        self, request: control_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> control_pb2.EvaluateReply:
        job = self._party.owned_job(request.job_id, request.owner)
        split = serde.split_from_proto(request.split)
        result = job.evaluate(request.epoch, split, _cancel_event(context))
        return control_pb2.EvaluateReply(
            rows=result.rows, **serde.optional_metrics_to_proto(result.metrics)
        )

    @rpc_method
    def Predict(  # noqa: N802
        self, request: control_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> control_pb2.PredictReply:
        job = self._party.owned_job(request.job_id, request.owner)
        split = serde.split_from_proto(request.split)
        return control_pb2.PredictReply(
            rows=job.predict(0, split, _cancel_event(context))
        )

    @rpc_method
    def GetStatus(  # noqa: N802
        self, request: control_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> control_pb2.PartyStatus:
        view = self._party.status()
        if self._serving is not None:
            view = dataclasses.replace(view, serving=self._serving.view())
        return serde.status_to_proto(view)

    @rpc_method
    def EndJob(  # noqa: N802
        self, request: control_pb2.EndJobRequest, context: grpc.ServicerContext
    ) -> control_pb2.EndJobReply:
        self._party.end_job(request.job_id, request.owner)
        return control_pb2.EndJobReply()

    @rpc_method
    def SaveCheckpoint(  # noqa: N802
        self, request: control_pb2.SaveCheckpointRequest, context: grpc.ServicerContext
    ) -> control_pb2.SaveCheckpointReply:
        job = self._party.owned_job(request.job_id, request.owner)
        digest, size = job.save_checkpoint(
            request.checkpoint_id, request.epoch, request.step
        )
        return control_pb2.SaveCheckpointReply(digest=digest, bytes=size)

    @rpc_method
    def RestoreCheckpoint(  # noqa: N802
        self,
        request: control_pb2.RestoreCheckpointRequest,
        context: grpc.ServicerContext,
    ) -> control_pb2.RestoreCheckpointReply:
        job = self._party.owned_job(request.job_id, request.owner)
        job.restore_checkpoint(
            request.checkpoint_id, request.epoch, request.step, request.digest
        )
        return control_pb2.RestoreCheckpointReply()

    @rpc_method
    def ExportModel(  # noqa: N802
        self, request: control_pb2.ExportModelRequest, context: grpc.ServicerContext
    ) -> control_pb2.ExportModelReply:
        job = self._party.owned_job(request.job_id, request.owner)
        part = job.export_model(
            request.version,
            request.epoch,
            serde.optional_metrics_from_proto(request),
            request.export_id,
        )
        return serde.part_export_to_proto(
            part.version,
            PartExport(part.digest, part.files_digest, part.export_id),
        )

    @rpc_method
    def CommitCheckpoints(  # noqa: N802
        self,
        request: control_pb2.CommitCheckpointsRequest,
        context: grpc.ServicerContext,
    ) -> control_pb2.CommitCheckpointsReply:
        job = self._party.owned_job(request.job_id, request.owner)
        job.checkpoints.keep_only(set(request.keep))
        return control_pb2.CommitCheckpointsReply()

    @rpc_method
    def HoldJob(  # noqa: N802
        self, request: control_pb2.HoldJobRequest, context: grpc.ServicerContext
    ) -> Iterator[control_pb2.HoldJobReply]:
        check_job_id(request.job_id)
        owners = self._party.owners
        job_id, token = request.job_id, request.owner.token
        owners.claim(job_id, token, request.owner.description, stream=True)
        # Released when the call ends for any reason: gRPC does not resume a
        # generator whose caller went away, so a ``finally`` here might never run.
        if not context.add_callback(lambda: owners.release(job_id, token)):
            owners.release(job_id, token)
            return
        while context.is_active():
            yield control_pb2.HoldJobReply(heartbeat_seconds=HEARTBEAT_SECONDS)
            if not owners.held_by(job_id, token, HEARTBEAT_SECONDS, context.is_active):
                owners.check(job_id, token)  # raises, naming the new holder
