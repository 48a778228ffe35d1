"""Online scoring from the coordinator's side: switching the version served.

``splitrec serve-switch --job job.yaml --version V`` asks the job's
label party to serve ``V`` (an exported version of the job): the label party
loads its part, has every feature party load theirs, and only then makes ``V``
the version of every request; when one party cannot, every party goes on
serving the old version. The coordinator is not on the scoring path.
"""

from __future__ import annotations

from splitrec.config.job import JobConfig
from splitrec.coordinator.client import PartyClient
from splitrec.security.tls import load_credentials
from splitrec.v1 import control_pb2

# A switch loads a SavedModel and a table's outputs at every party.
SWITCH_TIMEOUT = 300.0


def switch_serving(config: JobConfig, version: str) -> control_pb2.SwitchServingReply:
    label = config.party(config.label_party)
    assert label is not None
    client = PartyClient(
        label.name,
        label.address,
        config.rpc_timeout,
        load_credentials(config.tls),
        label.expected_identity,
    )
    try:
        return client.switch_serving(version, SWITCH_TIMEOUT)
    finally:
        client.close()
