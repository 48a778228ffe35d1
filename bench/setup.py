"""Data sets and config files for benchmark runs."""

from __future__ import annotations

import logging
from pathlib import Path

from common.movielens.prepare import prepare_generated
from coordinator.local_configs import LocalConfigs

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA_SEED = 1234


def ensure_data(cache: Path, rows: int) -> Path:
    """Party CSVs of ``rows`` generated ratings, made once and kept in ``cache``."""
    folder = cache / f"{rows}"
    if (folder / "alice_ml1m.csv").exists() and (folder / "bob_ml1m.csv").exists():
        return folder
    logger.info("generating %d ratings into %s", rows, folder)
    prepare_generated(folder, rows, DATA_SEED, keep_raw=False)
    return folder


def run_configs(
    folder: Path, data: Path, batch_size: int, pipeline: int
) -> LocalConfigs:
    """Configs of one benchmark run: one epoch, no prediction, frequent progress."""
    return LocalConfigs.write(
        folder,
        data,
        epochs=1,
        batch_size=batch_size,
        predict="none",
        report_every=10,
        strategy={"pipeline_size": pipeline},
        rpc_timeout=600,
    )
