"""Starts a party's gRPC server: control, peer, health and reflection on one port."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from splitrec.common.folder_lock import FolderLock
from splitrec.common.memory import give_back_free_memory
from splitrec.config.party import PartyConfig, PartyRole
from splitrec.engine import PartyEngine
from splitrec.party_server.authz import AuthorizationInterceptor, Authorizer
from splitrec.party_server.control_service import ControlService
from splitrec.party_server.data_slice import load_data_slice
from splitrec.party_server.label_serving import LabelServing
from splitrec.party_server.model_export import remove_staging
from splitrec.party_server.part_serving import FeatureServing, PartServing
from splitrec.party_server.party import Party
from splitrec.party_server.peer_service import PeerService
from splitrec.party_server.psi_spool import remove_spool_leftovers
from splitrec.party_server.row_store import party_stores, remove_stores
from splitrec.party_server.scoring_service import ScoringService
from splitrec.security.tls import Credentials, load_credentials
from splitrec.v1 import (
    control_pb2,
    control_pb2_grpc,
    peer_pb2,
    peer_pb2_grpc,
    scoring_pb2,
    scoring_pb2_grpc,
)
from splitrec.wire.rpc import create_server

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    control_pb2.DESCRIPTOR.services_by_name["Control"].full_name,
    peer_pb2.DESCRIPTOR.services_by_name["Peer"].full_name,
)
SCORING_NAME = scoring_pb2.DESCRIPTOR.services_by_name["Scoring"].full_name


# One party server per output_dir: two would overwrite each other's checkpoints.
OUTPUT_LOCK = ".party.lock"


@dataclass
class RunningParty:
    server: grpc.Server
    party: Party
    port: int
    health: health.HealthServicer
    output_lock: FolderLock
    serving: PartServing | None = None

    def stop(self, grace: float = 5.0) -> None:
        """Refuses new calls, lets running ones finish for ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        if self.serving is not None:
            self.serving.close()
        self.party.close()
        self.server.stop(grace).wait()
        self.output_lock.__exit__(None, None, None)


def start_party(
    config: PartyConfig, listen: str | None = None, peer_timeout: float = 120.0
) -> RunningParty:
    """Locks the party's output_dir, removes what exports cut short left in it,
    loads its data, builds its services and starts serving."""
    credentials = load_credentials(config.tls)
    output_lock = FolderLock(
        config.output_dir,
        OUTPUT_LOCK,
        f"party {config.party}",
        f"give each party server its own output_dir ({config.source})",
    )
    with contextlib.ExitStack() as undo:
        undo.enter_context(output_lock)
        for stale in remove_staging(config.output_dir):
            logger.warning(
                "party %s: removed %s, left by an export cut short (that "
                "version was never complete here; export it again if needed)",
                config.party,
                stale,
            )
        remove_stores(config.output_dir)
        for stale in remove_spool_leftovers(config.output_dir):
            logger.info("removed %s, left by an alignment cut short", stale)
        engine = PartyEngine(config.engine, f"party {config.party} ({config.source})")
        undo.callback(engine.close)
        engine.start()
        data = load_data_slice(
            config, store=party_stores(config.output_dir) / "table", engine=engine
        )
        give_back_free_memory()
        party = Party(config, data, credentials, peer_timeout, engine)
        running = _serve(config, party, credentials, listen, output_lock)
        undo.pop_all()
    return running


def _serve(
    config: PartyConfig,
    party: Party,
    credentials: Credentials | None,
    listen: str | None,
    output_lock: FolderLock,
) -> RunningParty:
    authorizer = Authorizer(config, secure=credentials is not None)
    server, port = create_server(
        listen or config.listen, credentials, [AuthorizationInterceptor(authorizer)]
    )
    health_servicer = health.HealthServicer()
    serving = _serving(config, party, health_servicer)
    control = ControlService(party, serving)
    control_pb2_grpc.add_ControlServicer_to_server(control, server)
    peer = PeerService(party, authorizer, serving)
    peer_pb2_grpc.add_PeerServicer_to_server(peer, server)
    names = SERVICE_NAMES
    if isinstance(serving, LabelServing):
        scoring_pb2_grpc.add_ScoringServicer_to_server(ScoringService(serving), server)
        names = (*names, SCORING_NAME)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if serving is not None:
        serving.start()
    server.start()
    logger.info(
        "party %s (%s) serving on port %d", config.party, config.role.value, port
    )
    return RunningParty(server, party, port, health_servicer, output_lock, serving)


def _serving(
    config: PartyConfig, party: Party, health_servicer: health.HealthServicer
) -> PartServing | None:
    """The party's online scoring part, if its config has one. Health reports
    ``SCORING_NAME`` (at the label party) serving once a version is loaded."""
    if config.serving is None:
        return None
    if config.role is PartyRole.FEATURE:
        return FeatureServing(config)

    def ready(loaded: bool) -> None:
        status = health_pb2.HealthCheckResponse
        code = status.SERVING if loaded else status.NOT_SERVING
        health_servicer.set(SCORING_NAME, code)

    return LabelServing(config, party.channel, ready)
