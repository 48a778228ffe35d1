"""Has every party export its own part of the trained model under one version.

The coordinator sends the version, the epochs trained and the validation
metrics after them; each party writes its part into its own output folder and
returns a digest of its variables. The coordinator keeps only the version, the
parties and their digests (in the manifest's ``exports``).
"""

from __future__ import annotations

import logging

from common.errors import JobFailedError, PeerError
from common.history import EpochRecord
from common.metrics import Metrics, TaskMetrics
from coordinator.client import PartyClient
from coordinator.fan_out import at_every_party

logger = logging.getLogger(__name__)

AUTO = "auto"
NONE = "none"
# Versions an automatic export tries: ``epoch-E``, then ``epoch-E.2`` and on.
AUTOMATIC_TRIES = 20


def version_name(setting: str, epochs: int) -> str | None:
    """The version a job's ``export`` setting names after ``epochs`` epochs
    (None: no export)."""
    if setting == NONE:
        return None
    return f"epoch-{epochs}" if setting == AUTO else setting


def validation_metrics(record: EpochRecord, rows: int) -> Metrics:
    """An epoch's validation metrics, as its record holds them."""
    tasks = tuple(
        TaskMetrics(
            name,
            figures["val_loss"],
            figures["val_auc"],
            figures["val_precision"],
            figures["val_recall"],
        )
        for name, figures in (record.tasks or {}).items()
    )
    return Metrics(
        rows,
        record.val_loss,
        record.val_auc,
        record.val_precision,
        record.val_recall,
        tasks,
    )


def export_everywhere(
    clients: dict[str, PartyClient],
    job: str,
    version: str,
    record: EpochRecord,
    validation_rows: int,
    automatic: bool = False,
) -> tuple[str, dict[str, str]]:
    """Every party's part exported at once; the version and the parties'
    digests. An ``automatic`` version that some party already holds with
    another model (an earlier run of the job with other settings) becomes
    ``<version>.2``, ``.3``, ... for every party alike."""
    metrics = validation_metrics(record, validation_rows)
    name = version
    for attempt in range(2, AUTOMATIC_TRIES + 2):
        try:
            digests = at_every_party(
                clients,
                lambda c, name=name: c.export_model(job, name, record.epoch, metrics),
            )
            break
        except PeerError as exc:
            if not automatic or exc.code != "ALREADY_EXISTS":
                raise
            logger.info("%s; trying %s.%d", exc, version, attempt)
            name = f"{version}.{attempt}"
    else:
        raise JobFailedError(
            f"model versions {version} to {name} all hold other models; set "
            "'export' in the job config to a version of your own"
        )
    logger.info(
        "model version %s: each party wrote its own part (%s)",
        name,
        ", ".join(f"{p} {d[:12]}" for p, d in digests.items()),
    )
    return name, digests
