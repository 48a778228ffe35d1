"""The coordinator's view of one party: control calls with deadlines on every RPC.

Every message sent or received is counted in ``traffic`` (serialized bytes), so a
job can report what the control plane cost.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from splitrec.common.errors import PeerError
from splitrec.common.metrics import Metrics
from splitrec.common.traffic import TrafficCounter
from splitrec.config.jobspec import JobSpec, PartExport, PartyDescription
from splitrec.security.tls import Credentials
from splitrec.v1 import control_pb2, control_pb2_grpc
from splitrec.wire import serde
from splitrec.wire.rpc import create_channel, rpc_failure

logger = logging.getLogger(__name__)


_HANDSHAKE_HINT = (
    " (the TLS handshake failed: check that both sides use certificates of the "
    "same CA, that the party's certificate names the identity configured for it, "
    "and that neither certificate has expired)"
)


@dataclass(frozen=True)
class Owner:
    """The coordinator run that drives a job: a random token, and who it is."""

    token: str
    description: str

    @classmethod
    def of_this_process(cls, runs: Path | str = "") -> Owner:
        where = f", runs {runs}" if runs else ""
        return cls(
            secrets.token_hex(16),
            f"coordinator pid {os.getpid()} on {socket.gethostname()}{where}",
        )


class PartyClient:
    def __init__(
        self,
        name: str,
        address: str,
        rpc_timeout: float,
        credentials: Credentials | None = None,
        identity: str | None = None,
        owner: Owner | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self.owner = owner or Owner.of_this_process()
        self._timeout = rpc_timeout
        self._channel = create_channel(address, credentials, identity or name)
        self._stub = control_pb2_grpc.ControlStub(self._channel)
        self.traffic = TrafficCounter()

    def rpc_error(self, rpc: str, error: grpc.RpcError) -> PeerError:
        """A ``PeerError`` naming the party, its address, the RPC and the status."""
        code = error.code()
        details = error.details() or ""
        if "handshake" in details.lower():
            details += _HANDSHAKE_HINT
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED and rpc == "Describe":
            details = "no answer; is the party server running at that address?"
        elif code == grpc.StatusCode.UNAVAILABLE and rpc == "Describe":
            details += " (is the party server running at that address?)"
        return rpc_failure(
            f"party {self.name} at {self.address}: {rpc} failed", error, rpc, details
        )

    def _call(
        self,
        rpc: str,
        method: Callable[..., Any],
        request: Message,
        timeout: float | None = None,
        **options: Any,
    ) -> Any:
        self.traffic.sent(request)
        try:
            reply = method(request, timeout=timeout or self._timeout, **options)
        except grpc.RpcError as exc:
            raise self.rpc_error(rpc, exc) from None
        self.traffic.received(reply)
        return reply

    def describe(self, connect_timeout: float) -> PartyDescription:
        """Waits up to ``connect_timeout`` for the party to come up, then asks it.

        While the party is unreachable the attempts back off (0.2 s doubling to
        5 s) and the wait is logged with the last reason, so a person can see
        whom the coordinator is waiting for and why.
        """
        deadline = time.monotonic() + connect_timeout
        pause, last_log = 0.2, 0.0
        retry = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        request = control_pb2.DescribeRequest()
        while True:
            remaining = deadline - time.monotonic()
            self.traffic.sent(request)
            try:
                reply = self._stub.Describe(
                    request, timeout=max(0.1, min(remaining, 10))
                )
            except grpc.RpcError as exc:
                if exc.code() not in retry or time.monotonic() + pause >= deadline:
                    raise self.rpc_error("Describe", exc) from None
                if time.monotonic() - last_log >= 5.0:
                    logger.info(
                        "waiting for party %s at %s (%.0f s left): %s",
                        self.name,
                        self.address,
                        deadline - time.monotonic(),
                        exc.details(),
                    )
                    last_log = time.monotonic()
            else:
                self.traffic.received(reply)
                return serde.description_from_proto(reply)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def prepare(self, spec: JobSpec, timeout: float, attempt: str = "") -> grpc.Future:
        """Starts PrepareJob (which aligns the rows privately, so it may take
        minutes); ``prepared`` turns the finished call into its reply."""
        request = control_pb2.PrepareJobRequest(
            job=serde.job_spec_to_proto(spec), owner=self.owner.token, attempt=attempt
        )
        self.traffic.sent(request)
        return self._stub.PrepareJob.future(request, timeout=timeout)

    def prepared(self, call: grpc.Future) -> control_pb2.PrepareJobReply:
        try:
            reply = call.result()
        except grpc.RpcError as exc:
            raise self.rpc_error("PrepareJob", exc) from None
        self.traffic.received(reply)
        return reply

    def run_steps(
        self,
        job_id: str,
        epoch: int,
        first_step: int,
        num_steps: int,
        report_every: int,
    ) -> grpc.Call:
        """Starts a window; iterate the call for progress (count each with
        ``traffic.received``), cancel it to stop."""
        request = control_pb2.RunStepsRequest(
            job_id=job_id,
            epoch=epoch,
            first_step=first_step,
            num_steps=num_steps,
            report_every=report_every,
            owner=self.owner.token,
        )
        self.traffic.sent(request)
        return self._stub.RunSteps(request)

    def evaluate(
        self, job_id: str, epoch: int, split: str
    ) -> tuple[int, Metrics | None]:
        request = control_pb2.EvaluateRequest(
            job_id=job_id,
            epoch=epoch,
            split=serde.split_to_proto(split),
            owner=self.owner.token,
        )
        reply = self._call("Evaluate", self._stub.Evaluate, request)
        return reply.rows, serde.optional_metrics_from_proto(reply)

    def predict(self, job_id: str, split: str) -> int:
        request = control_pb2.PredictRequest(
            job_id=job_id, split=serde.split_to_proto(split), owner=self.owner.token
        )
        return self._call("Predict", self._stub.Predict, request).rows

    def end_job(self, job_id: str, timeout: float | None = None) -> None:
        request = control_pb2.EndJobRequest(job_id=job_id, owner=self.owner.token)
        self._call("EndJob", self._stub.EndJob, request, timeout=timeout)

    def save_checkpoint(
        self, job_id: str, checkpoint_id: int, epoch: int, step: int
    ) -> control_pb2.SaveCheckpointReply:
        request = control_pb2.SaveCheckpointRequest(
            job_id=job_id,
            checkpoint_id=checkpoint_id,
            epoch=epoch,
            step=step,
            owner=self.owner.token,
        )
        return self._call("SaveCheckpoint", self._stub.SaveCheckpoint, request)

    def restore_checkpoint(
        self, job_id: str, checkpoint_id: int, epoch: int, step: int, digest: str
    ) -> None:
        request = control_pb2.RestoreCheckpointRequest(
            job_id=job_id,
            checkpoint_id=checkpoint_id,
            epoch=epoch,
            step=step,
            digest=digest,
            owner=self.owner.token,
        )
        self._call("RestoreCheckpoint", self._stub.RestoreCheckpoint, request)

    def commit_checkpoints(self, job_id: str, keep: list[int]) -> None:
        request = control_pb2.CommitCheckpointsRequest(
            job_id=job_id, keep=keep, owner=self.owner.token
        )
        self._call("CommitCheckpoints", self._stub.CommitCheckpoints, request)

    def export_model(
        self,
        job_id: str,
        version: str,
        epoch: int,
        metrics: Metrics | None,
        export_id: str,
    ) -> PartExport:
        """Has the party write its part of the model as part of the export
        ``export_id``; returns what it reports of the part."""
        request = control_pb2.ExportModelRequest(
            job_id=job_id,
            version=version,
            epoch=epoch,
            owner=self.owner.token,
            export_id=export_id,
            **serde.optional_metrics_to_proto(metrics),
        )
        reply = self._call("ExportModel", self._stub.ExportModel, request)
        return serde.part_export_from_proto(reply)

    def switch_serving(
        self, version: str, timeout: float
    ) -> control_pb2.SwitchServingReply:
        request = control_pb2.SwitchServingRequest(version=version)
        return self._call("SwitchServing", self._stub.SwitchServing, request, timeout)

    def status(self) -> control_pb2.PartyStatus:
        """The party's status (what grpcurl's GetStatus shows)."""
        return self._call(
            "GetStatus", self._stub.GetStatus, control_pb2.StatusRequest()
        )

    def hold(self, job_id: str) -> grpc.Call:
        """Opens the HoldJob stream that claims the job for this coordinator;
        iterate it for heartbeats, cancel it to let the job go."""
        request = control_pb2.HoldJobRequest(
            job_id=job_id,
            owner=control_pb2.Owner(
                token=self.owner.token, description=self.owner.description
            ),
        )
        return self._stub.HoldJob(request)

    def close(self) -> None:
        self._channel.close()
