"""The party: its config, its data slice, and the jobs it holds."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from splitrec.common.errors import (
    HandshakeError,
    InvalidMessageError,
    JobStateError,
    NotAllowedError,
    StorageError,
    UnknownJobError,
)
from splitrec.common.memory import give_back_free_memory
from splitrec.common.names import any_run_name_problem
from splitrec.common.paths import check_writable, confined
from splitrec.common.traffic import TrafficCounter
from splitrec.config.fingerprint import keyed, party_key, settings_digests
from splitrec.config.jobspec import (
    JobSpec,
    PartyDescription,
    PartyStatusView,
    PeerState,
)
from splitrec.config.party import PartyConfig, PartyRole
from splitrec.config.privacy import PrivacySettings
from splitrec.engine import PartyEngine
from splitrec.models.build import described_output
from splitrec.models.registry import combination_problem
from splitrec.party_server.alignment import Alignment
from splitrec.party_server.data_slice import DataSlice, load_dataset
from splitrec.party_server.feature_job import FeatureJob
from splitrec.party_server.job_base import PartyJob
from splitrec.party_server.label_job import LabelJob
from splitrec.party_server.model_export import (
    checked_version,
    exported_features,
    model_folder,
)
from splitrec.party_server.ownership import JobOwners
from splitrec.party_server.psi_feature import align_with_label_party
from splitrec.party_server.psi_hub import HubSession, PsiHub
from splitrec.party_server.row_store import party_stores
from splitrec.privacy.secure_aggregation.rules import secure_problem
from splitrec.security.tls import Credentials
from splitrec.wire.rpc import create_channel
from splitrec.wire.version import PROTOCOL_VERSION

logger = logging.getLogger(__name__)


def check_job_id(job_id: str) -> None:
    """Refuses a run name that is neither a job's nor a scoring run's, so could
    not be one folder name (INVALID_ARGUMENT)."""
    problem = any_run_name_problem(job_id)
    if problem is not None:
        raise InvalidMessageError(f"job_id: {problem}")


class Party:
    """Holds the party's jobs; the servicers call it and nothing else."""

    def __init__(
        self,
        config: PartyConfig,
        data: DataSlice,
        credentials: Credentials | None = None,
        peer_timeout: float = 120.0,
        engine: PartyEngine | None = None,
    ) -> None:
        self.config = config
        self.data = data
        # Where large tables' work runs (the party closes it with itself).
        self.engine = engine or PartyEngine(
            config.engine, f"party {config.party} ({config.source})"
        )
        self.output = described_output(
            config.party, data.features.shapes, config.model, config.source
        )
        self.credentials = credentials
        self._peer_timeout = peer_timeout
        self._jobs: dict[str, PartyJob] = {}
        # The dataset last loaded for scoring, by (key, exported part).
        self._dataset: tuple[tuple[str, str], DataSlice] | None = None
        self._latest: PartyJob | None = None
        self._channels: dict[str, grpc.Channel] = {}
        self._channels_lock = threading.Lock()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.traffic = TrafficCounter()
        self.psi_hub = PsiHub()
        self.owners = JobOwners()
        self.fingerprint = keyed(
            party_key(config.output_dir),
            {**settings_digests(config), "data": data.content_digest},
        )

    def describe(self) -> PartyDescription:
        return PartyDescription(
            party=self.config.party,
            role=self.config.role,
            protocol_version=PROTOCOL_VERSION,
            num_rows=self.data.num_rows,
            output=self.output,
            features=tuple(f.name for f in self.config.features),
            peers=tuple(p.name for p in self.config.peers),
            fingerprint=dict(self.fingerprint),
            aggregation=self.config.model.aggregation
            if self.config.role is PartyRole.LABEL
            else "",
            secure_aggregation=self.config.model.secure_aggregation,
        )

    def prepare_job(
        self,
        spec: JobSpec,
        cancelled: Callable[[], bool] = lambda: False,
        owner: str = "",
        attempt: str = "",
    ) -> PartyJob:
        """Aligns the rows with the other parties (PSI), then builds the models.

        Only the job's holder (``owner``, see ``ownership``) may prepare it; a job
        nobody holds is claimed by the call. An equal spec for a job that has not
        started returns that job (a retried call); an idle job left over from an
        earlier run is replaced by a fresh one. ``attempt`` names this round of
        preparation in the PSI streams.
        """
        self._check_spec(spec)
        self.owners.claim(spec.job_id, owner, "")
        check_writable(self.config.output_dir, "output_dir", self.config.source)
        if spec.init_from is not None:
            # Before any row is read: the version's files as exported.
            checked_version(self.config.output_dir, self.config.party, spec.init_from)
        with self._lock:
            existing = self._jobs.get(spec.job_id)
        if existing is not None and existing.busy:
            self._take_over(existing)
        with self._lock:
            existing = self._reusable(spec)
        if existing is not None:
            return existing
        data = self._rows_of(spec)
        alignment = self._align(spec, data, cancelled, attempt)
        with self._lock:
            existing = self._reusable(spec)
            if existing is not None:
                return existing
            existing = self._jobs.get(spec.job_id)
            if existing is not None:
                logger.warning(
                    "job %s was left over from an earlier run; starting it afresh",
                    spec.job_id,
                )
                existing.close()
            job = self._new_job(spec, data.view(alignment.rows))
            give_back_free_memory()
            job.alignment_cached = alignment.cached
            self._jobs[spec.job_id] = job
            self._latest = job
            logger.info(
                "prepared job %s (%d train steps per epoch)",
                spec.job_id,
                job.steps_per_epoch,
            )
            return job

    def _take_over(self, job: PartyJob, wait: float = 30.0) -> None:
        """Stops a pass that is still running when the coordinator prepares its
        job again (it restarted, or it is recovering): the new call wins."""
        logger.warning(
            "job %s is still %s here; the coordinator prepares it again, so the "
            "running pass is stopped",
            job.spec.job_id,
            job.status.state,
        )
        job.close()
        deadline = time.monotonic() + wait
        while job.busy and time.monotonic() < deadline:
            time.sleep(0.05)

    def _reusable(self, spec: JobSpec) -> PartyJob | None:
        """A prepared, unstarted job of this spec; refuses to replace a busy one."""
        existing = self._jobs.get(spec.job_id)
        if existing is None:
            return None
        if existing.spec == spec and existing.status.state == "prepared":
            return existing
        if existing.busy:
            raise JobStateError(
                f"job {spec.job_id!r} is running here ({existing.status.state}); "
                "wait for it to finish or use another job name"
            )
        return None

    def _rows_of(self, spec: JobSpec) -> DataSlice:
        """The rows a job reads: the party's data file, or for scoring one of
        its datasets, encoded as the exported part it is scored with was (the
        last one loaded is kept)."""
        if not spec.dataset:
            return self.data
        assert spec.init_from is not None
        folder = model_folder(
            confined(self.config.output_dir, spec.init_from.job),
            spec.init_from.version,
        )
        key = (spec.dataset, str(folder))
        with self._lock:
            if self._dataset is not None and self._dataset[0] == key:
                return self._dataset[1]
        try:
            features = exported_features(folder)
        except StorageError as exc:
            raise HandshakeError(
                f"party {self.config.party}: model version "
                f"{spec.init_from.version!r} of job {spec.init_from.job!r} is not "
                f"usable here: {exc}"
            ) from None
        # A store of its own: a scoring run still reading the one before keeps it.
        store = party_stores(self.config.output_dir) / (
            f"dataset-{spec.dataset}-{uuid.uuid4().hex[:12]}"
        )
        data = load_dataset(self.config, spec.dataset, features, store, self.engine)
        with self._lock:
            replaced, self._dataset = self._dataset, (key, data)
        if replaced is not None and replaced[1].store is not None:
            # Its maps stay readable by whoever still holds them.
            shutil.rmtree(replaced[1].store.folder, ignore_errors=True)
        return data

    def _align(
        self,
        spec: JobSpec,
        data: DataSlice,
        cancelled: Callable[[], bool],
        attempt: str,
    ) -> Alignment:
        """This party's rows of the IDs every party holds (PSI or its cache)."""
        engine = self.engine.for_rows(data.num_rows)
        if self.config.role is PartyRole.LABEL:
            session = HubSession(
                spec, self.config, data, self._peer_timeout, attempt, engine
            )
            self.psi_hub.open(session)
            try:
                return session.run(cancelled)
            finally:
                self.psi_hub.close(session)
        return align_with_label_party(
            self.channel(spec.label_party),
            spec,
            self.config,
            data,
            cancelled,
            self.traffic,
            attempt,
            engine,
        )

    def _new_job(self, spec: JobSpec, data: DataSlice) -> PartyJob:
        if self.config.role is PartyRole.LABEL:
            return LabelJob(
                spec, self.config, data, self._peer_timeout, self.credentials
            )
        channel = self.channel(spec.label_party)
        return FeatureJob(
            spec,
            self.config,
            data,
            channel,
            self._peer_timeout,
            self.traffic,
            self.credentials,
        )

    def channel(self, peer_name: str) -> grpc.Channel:
        """The one channel to a configured peer, made on first use."""
        peer = self.config.peer(peer_name)
        if peer is None:
            raise NotAllowedError(f"{peer_name!r} is not a peer of {self.config.party}")
        with self._channels_lock:
            channel = self._channels.get(peer.name)
            if channel is None:
                channel = self._channels[peer.name] = create_channel(
                    peer.address, self.credentials, peer.expected_identity
                )
            return channel

    def probe_peers(self, timeout: float = 1.0) -> tuple[PeerState, ...]:
        """Asks every configured peer's health service, each for ``timeout`` s."""
        states = []
        for peer in self.config.peers:
            stub = health_pb2_grpc.HealthStub(self.channel(peer.name))
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
                answer = health_pb2.HealthCheckResponse
                serving = reply.status == answer.SERVING
                detail = "" if serving else answer.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                serving = False
                detail = f"{exc.code().name}: {exc.details()}"
            states.append(
                PeerState(
                    peer.name, peer.address, peer.expected_identity, serving, detail
                )
            )
        return tuple(states)

    def _check_spec(self, spec: JobSpec) -> None:
        me = self.config.party
        mine = spec.party(me)
        names = [p.name for p in spec.parties]
        if mine is None:
            raise HandshakeError(
                f"job {spec.job_id!r} lists parties {names}, not {me!r}"
            )
        is_label = spec.label_party == me
        if is_label != (self.config.role is PartyRole.LABEL):
            raise HandshakeError(
                f"job {spec.job_id!r} names {spec.label_party!r} as label party, "
                f"but {me!r} is configured as a {self.config.role.value} party in "
                f"{self.config.source}"
            )
        if mine.output != self.output:
            raise HandshakeError(
                f"job {spec.job_id!r} expects {me!r} to output {mine.output}, "
                f"but its model outputs {self.output}"
            )
        if is_label and spec.aggregation != self.config.model.aggregation:
            raise HandshakeError(
                f"job {spec.job_id!r} has the fuse aggregate by "
                f"{spec.aggregation!r}, but {self.config.source} sets "
                f"model.aggregation {self.config.model.aggregation!r}"
            )
        secure = self.config.model.secure_aggregation
        if is_label and spec.secure_aggregation != secure:
            raise HandshakeError(
                f"job {spec.job_id!r} has secure aggregation "
                f"{'on' if spec.secure_aggregation else 'off'}, but "
                f"{self.config.source} sets model.aggregation.secure {secure}"
            )
        problem = secure_problem(
            spec.secure_aggregation,
            spec.aggregation,
            len(spec.feature_parties),
            spec.compression,
        )
        if problem is not None:
            raise HandshakeError(f"job {spec.job_id!r}: {problem}")
        label = spec.party(spec.label_party)
        problem = (
            f"label party {spec.label_party!r} is not one of its parties {names}"
            if label is None
            else combination_problem(
                label.output.family,
                {p.name: p.output for p in spec.parties},
                spec.aggregation,
            )
        )
        if problem is not None:
            raise HandshakeError(f"job {spec.job_id!r}: {problem}")
        others = [n for n in names if n != me] if is_label else [spec.label_party]
        unknown = [n for n in others if self.config.peer(n) is None]
        if unknown:
            raise NotAllowedError(
                f"parties {unknown} are not configured peers of {me!r} "
                f"(peers in {self.config.source}: "
                f"{[p.name for p in self.config.peers]})"
            )

    def owned_job(self, job_id: str, owner: str) -> PartyJob:
        """The job, for a control call of its holder only."""
        check_job_id(job_id)
        self.owners.check(job_id, owner)
        return self.job(job_id)

    def job(self, job_id: str) -> PartyJob:
        check_job_id(job_id)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(
                f"party {self.config.party!r} holds no job {job_id!r}; prepare it first"
            )
        return job

    def label_job(self, job_id: str) -> LabelJob:
        job = self.job(job_id)
        if not isinstance(job, LabelJob):
            raise NotAllowedError(
                f"party {self.config.party!r} is not the label party of {job_id!r}"
            )
        return job

    def end_job(self, job_id: str, owner: str | None = None) -> None:
        """Drops the job; ``owner`` (the caller's token) must be its holder's,
        unless the caller is this process itself (``None``)."""
        check_job_id(job_id)
        if owner is not None:
            self.owners.check(job_id, owner)
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            raise UnknownJobError(
                f"party {self.config.party!r} holds no job {job_id!r}"
            )
        job.close()
        logger.info("ended job %s", job_id)

    def is_peer(self, name: str) -> bool:
        return self.config.peer(name) is not None

    def status(self) -> PartyStatusView:
        job = self._latest
        state = job.status if job is not None else None
        return PartyStatusView(
            description=self.describe(),
            job_id=job.spec.job_id if job is not None else "",
            state=state.state if state is not None else "idle",
            epoch=state.epoch if state is not None else 0,
            step=state.step if state is not None else 0,
            samples_per_second=state.samples_per_second if state is not None else 0.0,
            last_metrics=state.last_metrics if state is not None else None,
            uptime_seconds=time.monotonic() - self._started,
            peer_traffic=self.traffic.snapshot(),
            peers=self.probe_peers(),
            transport_security="insecure" if self.credentials is None else "mutual-tls",
            privacy=job.spec.privacy if job is not None else PrivacySettings(),
            spent=job.privacy_spent() if job is not None else None,
            job_owner=self.owners.describe(job.spec.job_id) if job is not None else "",
            in_flight_peak=state.in_flight_peak if state is not None else 0,
            pipeline_depth=state.pipeline_depth if state is not None else 0,
        )

    def close(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            job.close()
        for channel in self._channels.values():
            channel.close()
        self.engine.close()
