"""The coordinator's view of one party: control calls with deadlines on every RPC.

Every message sent or received is counted in ``traffic`` (serialized bytes), so a
job can report what the control plane cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from common import serde
from common.errors import PeerError
from common.jobspec import JobSpec, PartyDescription
from common.metrics import Metrics
from common.rpc import create_channel
from common.traffic import Traffic, TrafficCounter
from splitrec.v1 import control_pb2, control_pb2_grpc


class PartyClient:
    def __init__(self, name: str, address: str, rpc_timeout: float) -> None:
        self.name = name
        self.address = address
        self._timeout = rpc_timeout
        self._channel = create_channel(address)
        self._stub = control_pb2_grpc.ControlStub(self._channel)
        self.traffic = TrafficCounter()

    def rpc_error(self, rpc: str, error: grpc.RpcError) -> PeerError:
        """A ``PeerError`` naming the party, its address, the RPC and the status."""
        code = error.code()
        details = error.details() or ""
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and rpc == "Describe":
            details = "no answer; is the party server running at that address?"
        return PeerError(
            f"party {self.name} at {self.address}: {rpc} failed: {code.name}: {details}"
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
        """Waits up to ``connect_timeout`` for the party to come up, then asks it."""
        reply = self._call(
            "Describe",
            self._stub.Describe,
            control_pb2.DescribeRequest(),
            timeout=connect_timeout,
            wait_for_ready=True,
        )
        return serde.description_from_proto(reply)

    def prepare(self, spec: JobSpec) -> control_pb2.PrepareJobReply:
        request = control_pb2.PrepareJobRequest(job=serde.job_spec_to_proto(spec))
        return self._call("PrepareJob", self._stub.PrepareJob, request)

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
        )
        self.traffic.sent(request)
        return self._stub.RunSteps(request)

    def evaluate(
        self, job_id: str, epoch: int, split: str
    ) -> tuple[int, Metrics | None]:
        request = control_pb2.EvaluateRequest(
            job_id=job_id, epoch=epoch, split=serde.split_to_proto(split)
        )
        reply = self._call("Evaluate", self._stub.Evaluate, request)
        return reply.rows, serde.optional_metrics_from_proto(reply)

    def predict(self, job_id: str, split: str) -> int:
        request = control_pb2.PredictRequest(
            job_id=job_id, split=serde.split_to_proto(split)
        )
        return self._call("Predict", self._stub.Predict, request).rows

    def end_job(self, job_id: str, timeout: float | None = None) -> None:
        request = control_pb2.EndJobRequest(job_id=job_id)
        self._call("EndJob", self._stub.EndJob, request, timeout=timeout)

    def peer_traffic(self) -> Traffic:
        """What the party has exchanged with its peers so far (from its status)."""
        reply = self._call(
            "GetStatus", self._stub.GetStatus, control_pb2.StatusRequest()
        )
        return serde.traffic_from_proto(reply.peer_traffic)

    def close(self) -> None:
        self._channel.close()
