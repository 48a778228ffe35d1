"""``Federation``: drive a split-learning job from Python (a script or a
notebook), against parties that already run or parties started here.

The federation is the same as the command line's: each party runs its own
server with its own config and data; this process is the coordinator and
learns only what the label party reports as aggregates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from splitrec.api.history import History
from splitrec.api.local_parties import (
    PartyLike,
    StartedParties,
    as_config,
    start_parties,
)
from splitrec.common.closing import Closing
from splitrec.common.errors import ConfigError, JobFailedError
from splitrec.common.history import record_from_json
from splitrec.common.metrics import Metrics
from splitrec.common.paths import check_writable, confined
from splitrec.config.job import JobConfig, load_job_config, validate_job_config
from splitrec.config.party import PartyConfig
from splitrec.coordinator.callbacks import Callback
from splitrec.coordinator.manifest import Manifest, read_manifest

logger = logging.getLogger(__name__)

JobLike = JobConfig | str | Path | Mapping[str, Any]


def job_config(job: JobLike) -> JobConfig:
    """A job's config from a ``JobConfig``, a file's path or a mapping (the
    file's layout or the flat settings)."""
    return as_config(job, JobConfig, load_job_config, "job")


def with_settings(config: JobConfig, settings: Mapping[str, Any]) -> JobConfig:
    """``config`` with ``settings`` (``JobConfig``'s field names: epochs,
    batch_size, learning_rate, pipeline_size, early_stopping, ...) applied,
    validated as a config built in Python is (``None`` keeps a value)."""
    changes = {k: v for k, v in settings.items() if v is not None}
    if not changes:
        return config
    known = sorted(set(type(config).model_fields) - {"source", "dataset", "job"})
    for key in changes:
        if key not in known:
            raise ConfigError(
                f"{key!r} is not a job setting; the settings: {', '.join(known)}"
            )
    fields = {name: getattr(config, name) for name in type(config).model_fields}
    changed = JobConfig.model_validate({**fields, **changes})
    validate_job_config(changed)
    return changed


@dataclass(frozen=True)
class Export:
    """A model version every party exported its part of."""

    version: str
    epoch: int
    val_auc: float


@dataclass(frozen=True)
class Prediction:
    """A dataset scored with an exported version: the rows every party shares,
    those the label party scored, and the scores themselves when the label
    party runs here (its own output folder is readable); else ``None``."""

    dataset: str
    version: str
    shared_rows: int
    scored_rows: int
    scores: pd.DataFrame | None
    path: Path | None


class Federation(Closing):
    """The coordinator of one job, driven from Python.

    ``Federation.connect(job)`` drives parties that already run;
    ``Federation.local(job, parties)`` starts them here first (use it as a
    context manager: the parties stop however the block ends)."""

    def __init__(
        self,
        job: JobConfig,
        started: StartedParties | None = None,
        parties: Mapping[str, PartyConfig] | None = None,
    ) -> None:
        self.job = job
        self._started = started
        # The parties' configs when they run here (their output folders).
        self.parties = dict(parties or {})

    # --- making one ------------------------------------------------------------

    @classmethod
    def connect(cls, job: JobLike) -> Federation:
        """Drives the parties ``job`` names, which already run (each at its own
        host, started with ``splitrec-party``)."""
        config = job_config(job)
        if config.tls.insecure:
            remote = [
                p.name
                for p in config.parties
                if not p.address.startswith(("127.", "localhost", "[::1]"))
            ]
            if remote:
                logger.warning(
                    "job %s talks to %s without TLS; give the job a 'tls' section "
                    "(the coordinator's certificate) for parties on other hosts",
                    config.job,
                    ", ".join(remote),
                )
        return cls(config)

    @classmethod
    def local(
        cls,
        job: JobLike,
        parties: Sequence[PartyLike],
        work: str | Path | None = None,
        ready_timeout: float = 120.0,
    ) -> Federation:
        """Starts one ``splitrec-party`` process per party from ``parties``
        (``PartyConfig`` objects, config files or mappings) on free loopback
        ports, and returns the federation that drives them. Their config files
        go to ``work`` (default: ``<runs_dir>/<job>/parties``), their logs to
        ``<work>/logs``. Stop them with ``close()``, or use the
        federation as a context manager."""
        config = job_config(job)
        check_writable(config.runs_dir, "runs_dir", config.source)
        run_dir = confined(config.runs_dir, config.job)
        folder = Path(work).resolve() if work is not None else run_dir / "parties"
        config, started, started_configs = start_parties(
            config, parties, folder, folder / "logs", ready_timeout
        )
        return cls(config, started, started_configs)

    def close(self) -> None:
        """Stops the parties this federation started (none after ``connect``)."""
        if self._started is not None:
            self._started.stop()
            self._started = None

    def __repr__(self) -> str:
        where = "local" if self._started is not None else "connected"
        names = ", ".join(p.name for p in self.job.parties)
        return f"Federation({self.job.job!r}, {where}: {names})"

    @property
    def run_dir(self) -> Path:
        """The job's runs folder: manifest, history, TensorBoard files, logs."""
        return confined(self.job.runs_dir, self.job.job)

    # --- the verbs -------------------------------------------------------------

    def fit(
        self,
        epochs: int | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        **settings: Any,
    ) -> History:
        """Trains the job afresh; ``epochs``, ``batch_size`` and ``settings``
        (the job config's fields: seed, learning_rate, pipeline_size,
        early_stopping, export, ...) override its config for this run.
        Returns the run's history. An interrupted fit goes on with
        ``resume()``."""
        config = with_settings(
            self.job, {"epochs": epochs, "batch_size": batch_size, **settings}
        )
        return self._train(config, fresh=True, callbacks=callbacks, progress=progress)

    def resume(
        self, callbacks: Sequence[Callback] = (), progress: bool = True
    ) -> History:
        """Goes on with the job's unfinished run (an interrupted ``fit``, or
        one that failed) from its last checkpoint, with the settings it
        started with."""
        manifest = self._manifest()
        if manifest is None or manifest.finished:
            raise JobFailedError(
                f"job {self.job.job} has no unfinished run in {self.run_dir} to "
                "resume; start one with fit()",
                fatal=True,
            )
        config = with_settings(self.job, manifest.settings)
        return self._train(config, fresh=False, callbacks=callbacks, progress=progress)

    def _train(
        self,
        config: JobConfig,
        fresh: bool,
        callbacks: Sequence[Callback],
        progress: bool,
    ) -> History:
        from splitrec.coordinator.job import JobDriver

        driver = JobDriver(config, fresh=fresh, callbacks=callbacks, progress=progress)
        result = driver.run()
        return History(
            result.records, result.run_dir, driver.exported, driver.stopped_by
        )

    def history(self) -> History:
        """The history of the job's latest run, as its manifest records it
        (``exported``: the newest model version)."""
        manifest = self._manifest()
        records = [record_from_json(r) for r in manifest.records] if manifest else []
        exported = None
        if manifest is not None and manifest.exports:
            exported = list(manifest.exports)[-1]  # recorded in export order
        return History(records, self.run_dir, exported)

    def evaluate(self, epoch: int | None = None) -> dict[str, float]:
        """The validation metrics of the model after ``epoch`` (1-based; None:
        the one the run ended with), computed again by the parties from its
        checkpoint."""
        from splitrec.coordinator.job import JobDriver

        record, metrics = JobDriver(self._recorded_settings()).evaluate(epoch)
        return {"epoch": record.epoch, **_metrics_dict(metrics)}

    def export(self, version: str | None = None, epoch: int | None = None) -> Export:
        """Every party exports its part of the model after ``epoch`` (1-based;
        None: the best validation AUC) as ``version`` (None: ``epoch-<E>``)."""
        from splitrec.coordinator.job import JobDriver

        choice = JobDriver(self._recorded_settings()).export(epoch, version)
        return Export(choice.version, choice.record.epoch, choice.record.val_auc)

    def predict(self, dataset: str, version: str | None = None) -> Prediction:
        """Scores the dataset every party's config lists under ``datasets``
        (by key) with an exported ``version`` (None: the newest export)."""
        from splitrec.coordinator.job import JobDriver
        from splitrec.coordinator.scoring import scoring_config

        if version is None:
            version = self.history().exported
            if version is None:
                raise JobFailedError(
                    f"job {self.job.job} has no exported model version yet; "
                    "export one first (export())",
                    fatal=True,
                )
        scoring = scoring_config(self.job, version, dataset)
        found = JobDriver(scoring, progress=False).score()
        path, scores = None, None
        label = self.parties.get(self.job.label_party)
        if label is not None:
            path = confined(label.output_dir, scoring.job) / "predictions-all.csv"
            if path.is_file():
                scores = pd.read_csv(path)
        return Prediction(
            dataset, version, found["shared_rows"], found["scored_rows"], scores, path
        )

    def status(self) -> dict[str, dict[str, Any]]:
        """Each party's status as it reports it (state, job, epoch, step,
        serving, ...), by name; ``{"error": ...}`` for one out of reach."""
        from splitrec.common.errors import SplitRecError
        from splitrec.coordinator.client import Owner, PartyClient
        from splitrec.security.tls import load_credentials
        from splitrec.wire.serde import status_to_dict

        credentials = load_credentials(self.job.tls)
        found: dict[str, dict[str, Any]] = {}
        for party in self.job.parties:
            client = PartyClient(
                party.name,
                party.address,
                min(self.job.rpc_timeout, 10.0),
                credentials,
                party.expected_identity,
                Owner.of_this_process(self.run_dir),
            )
            try:
                found[party.name] = status_to_dict(client.status())
            except SplitRecError as exc:
                found[party.name] = {"error": str(exc)}
            finally:
                client.close()
        return found

    def baseline(self, epochs: int | None = None, **settings: Any) -> History:
        """The same job trained centrally: every party's base and the fuse
        composed in this process, on the parties' joined data, with the job's
        seed and settings (``epochs`` and ``settings`` override them as for
        ``fit``). What split training is compared with, and equal to. Only
        where every party's config and data are on this machine (a local
        federation): it reads every party's data."""
        if set(self.parties) != {p.name for p in self.job.parties}:
            raise JobFailedError(
                "the centralized baseline joins every party's data in one process; "
                "it runs only where every party's config and data are on this "
                "machine (Federation.local)",
                fatal=True,
            )
        from splitrec.baseline.centralized import CentralizedTrainer
        from splitrec.party_server.data_slice import load_data_slice

        config = with_settings(self.job, {"epochs": epochs, **settings})
        parties = {
            name: (party, load_data_slice(party))
            for name, party in self.parties.items()
        }
        records = CentralizedTrainer(config, parties).fit()
        return History(records, self.run_dir)

    def scoring_client(self, identity: str = "", tls: Any = None) -> Any:
        """A client of the label party's online ``Scoring`` service (the
        party's config must have a ``serving`` section); ``tls`` is the
        client's own ``TlsConfig`` (default: the job's), ``identity`` the name
        in the label party's certificate (default: its name)."""
        from splitrec.api.scoring import ScoringClient

        label = self.job.party(self.job.label_party)
        assert label is not None
        return ScoringClient(
            label.address,
            tls if tls is not None else self.job.tls,
            identity or label.expected_identity,
        )

    # --- helpers -----------------------------------------------------------------

    def _manifest(self) -> Manifest | None:
        return read_manifest(self.run_dir)

    def _recorded_settings(self) -> JobConfig:
        """The job with the epochs and batch size its latest run used."""
        manifest = self._manifest()
        return with_settings(self.job, manifest.settings if manifest else {})


def _metrics_dict(metrics: Metrics) -> dict[str, float]:
    found = {
        "val_loss": metrics.loss,
        "val_auc": metrics.auc,
        "val_precision": metrics.precision,
        "val_recall": metrics.recall,
    }
    for task in metrics.tasks:
        found.update(
            {
                f"{task.name}/val_loss": task.loss,
                f"{task.name}/val_auc": task.auc,
                f"{task.name}/val_precision": task.precision,
                f"{task.name}/val_recall": task.recall,
            }
        )
    return found
