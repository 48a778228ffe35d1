"""Data sets and config files for benchmark runs."""

from __future__ import annotations

import logging
from pathlib import Path

from common.movielens.prepare import ALICE_CSV, BOB_CSV, BST_FILES, prepare_generated
from coordinator.local_configs import LocalConfigs

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA_SEED = 1234


def ensure_data(cache: Path, rows: int, sequence_length: int = 0) -> Path:
    """Party CSVs of ``rows`` generated ratings, made once and kept in ``cache``:
    the reference layout, or with ``sequence_length`` the bst layout."""
    if sequence_length:
        folder, names = cache / f"{rows}-bst{sequence_length}", BST_FILES
    else:
        folder, names = cache / f"{rows}", (ALICE_CSV, BOB_CSV)
    if all((folder / name).exists() for name in names):
        return folder
    logger.info("generating %d ratings into %s", rows, folder)
    prepare_generated(
        folder,
        rows,
        DATA_SEED,
        keep_raw=False,
        layout="bst" if sequence_length else "reference",
        sequence_length=sequence_length or 1,
    )
    return folder


def run_configs(
    folder: Path, data: Path, batch_size: int, pipeline: int, layout: str = "reference"
) -> LocalConfigs:
    """Configs of one benchmark run: one epoch, no prediction, frequent progress."""
    return LocalConfigs.write(
        folder,
        data,
        layout=layout,
        epochs=1,
        batch_size=batch_size,
        predict="none",
        report_every=10,
        strategy={"pipeline_size": pipeline},
        rpc_timeout=600,
    )
