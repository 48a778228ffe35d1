"""The label party's ``Scoring`` service (``proto/splitrec/v1/scoring.proto``)."""

from __future__ import annotations

import grpc

from splitrec.party_server.label_serving import LabelServing
from splitrec.party_server.status_codes import rpc_method
from splitrec.v1 import scoring_pb2, scoring_pb2_grpc
from splitrec.wire import serde


class ScoringService(scoring_pb2_grpc.ScoringServicer):
    def __init__(self, serving: LabelServing) -> None:
        self._serving = serving

    @rpc_method
    def Score(  # noqa: N802 - gRPC method name
        self, request: scoring_pb2.ScoreRequest, context: grpc.ServicerContext
    ) -> scoring_pb2.ScoreResponse:
        keys = serde.score_request_from_proto(request)
        scored = self._serving.score(keys, context.time_remaining())
        return serde.scored_to_proto(scored)

    @rpc_method
    def GetServingStatus(  # noqa: N802 - gRPC method name
        self, request: scoring_pb2.ServingStatusRequest, context: grpc.ServicerContext
    ) -> scoring_pb2.ServingStatus:
        return serde.serving_view_to_proto(self._serving.view())
