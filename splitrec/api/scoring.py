"""A client of a label party's online ``Scoring`` service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
import pandas as pd

from splitrec.common.closing import Closing
from splitrec.common.errors import PeerError
from splitrec.config.tls import TlsConfig
from splitrec.security.tls import load_credentials
from splitrec.v1 import scoring_pb2_grpc
from splitrec.wire import serde
from splitrec.wire.rpc import create_channel


class ScoringClient(Closing):
    """Scores rows online: each party's entity keys in, one score per task out.

    The label party asks each feature party for its base outputs of the keys
    it names and answers with the fuse's scores; the client needs the label
    party's address and, with TLS, a certificate the label party's
    ``serving.clients`` lists."""

    def __init__(
        self, address: str, tls: TlsConfig, identity: str, timeout: float = 30.0
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = create_channel(address, load_credentials(tls), identity)
        self._stub = scoring_pb2_grpc.ScoringStub(self._channel)

    def score(self, keys: Mapping[str, Sequence[str]]) -> pd.DataFrame:
        """Scores of the rows ``keys`` names: party → its entity keys, one per
        row or one for every row (``{"alice": ["42"], "bob": ["1", "2"]}``).
        One row per scored row: the keys, the scores (``score`` for a job of
        one label, else one column per task by name), and ``problem`` (why a
        row has no score, else empty)."""
        request = serde.score_request_to_proto(
            {party: [str(k) for k in found] for party, found in keys.items()}
        )
        try:
            reply = self._stub.Score(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise PeerError(
                f"Scoring at {self.address} failed: {error.code().name}: "
                f"{error.details()}",
                code=error.code().name,
                rpc="Score",
            ) from None
        rows = len(reply.rows)
        frame = pd.DataFrame(
            {
                party: list(found) * rows if len(found) == 1 else list(found)
                for party, found in keys.items()
            }
        )
        # One label (named "label" unless named): one column "score", as in
        # batch predictions.
        tasks = list(reply.tasks)
        if tasks in ([], ["label"]):
            tasks = ["score"]
        for index, task in enumerate(tasks):
            frame[task] = [
                row.scores[index] if not row.problem else float("nan")
                for row in reply.rows
            ]
        frame["problem"] = [row.problem for row in reply.rows]
        frame.attrs["version"] = reply.version
        return frame

    def close(self) -> None:
        self._channel.close()
