"""The coordinator's view of one party: control calls with deadlines on every RPC."""

from __future__ import annotations

import grpc

from common import serde
from common.errors import PeerError
from common.jobspec import JobSpec, PartyDescription
from common.metrics import Metrics
from common.rpc import create_channel
from splitrec.v1 import control_pb2, control_pb2_grpc


class PartyClient:
    def __init__(self, name: str, address: str, rpc_timeout: float) -> None:
        self.name = name
        self.address = address
        self._timeout = rpc_timeout
        self._channel = create_channel(address)
        self._stub = control_pb2_grpc.ControlStub(self._channel)

    def _fail(self, rpc: str, error: grpc.RpcError) -> PeerError:
        code = error.code()
        details = error.details() or ""
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and rpc == "Describe":
            details = "no answer; is the party server running at that address?"
        return PeerError(
            f"party {self.name} at {self.address}: {rpc} failed: {code.name}: {details}"
        )

    def describe(self, connect_timeout: float) -> PartyDescription:
        """Waits up to ``connect_timeout`` for the party to come up, then asks it."""
        try:
            reply = self._stub.Describe(
                control_pb2.DescribeRequest(),
                timeout=connect_timeout,
                wait_for_ready=True,
            )
        except grpc.RpcError as exc:
            raise self._fail("Describe", exc) from None
        return serde.description_from_proto(reply)

    def prepare(self, spec: JobSpec) -> control_pb2.PrepareJobReply:
        request = control_pb2.PrepareJobRequest(job=serde.job_spec_to_proto(spec))
        try:
            return self._stub.PrepareJob(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise self._fail("PrepareJob", exc) from None

    def run_steps(
        self,
        job_id: str,
        epoch: int,
        first_step: int,
        num_steps: int,
        report_every: int,
    ) -> grpc.Call:
        """Starts a window; iterate the call for progress, cancel it to stop."""
        request = control_pb2.RunStepsRequest(
            job_id=job_id,
            epoch=epoch,
            first_step=first_step,
            num_steps=num_steps,
            report_every=report_every,
        )
        return self._stub.RunSteps(request)

    def evaluate(
        self, job_id: str, epoch: int, split: str
    ) -> tuple[int, Metrics | None]:
        request = control_pb2.EvaluateRequest(
            job_id=job_id, epoch=epoch, split=serde.split_to_proto(split)
        )
        try:
            reply = self._stub.Evaluate(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise self._fail("Evaluate", exc) from None
        return reply.rows, serde.optional_metrics_from_proto(reply)

    def predict(self, job_id: str, split: str) -> int:
        request = control_pb2.PredictRequest(
            job_id=job_id, split=serde.split_to_proto(split)
        )
        try:
            return self._stub.Predict(request, timeout=self._timeout).rows
        except grpc.RpcError as exc:
            raise self._fail("Predict", exc) from None

    def end_job(self, job_id: str, timeout: float | None = None) -> None:
        try:
            self._stub.EndJob(
                control_pb2.EndJobRequest(job_id=job_id),
                timeout=timeout or self._timeout,
            )
        except grpc.RpcError as exc:
            raise self._fail("EndJob", exc) from None

    def rpc_error(self, rpc: str, error: grpc.RpcError) -> PeerError:
        return self._fail(rpc, error)

    def close(self) -> None:
        self._channel.close()
