"""Data sets and config files for benchmark runs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from splitrec.common.errors import OwnershipError
from splitrec.common.folder_lock import FolderLock
from splitrec.coordinator.local_configs import LocalConfigs
from splitrec.datasets.census.generate import DATA_ROWS, TEST_ROWS, generate_adult
from splitrec.datasets.census.prepare import prepare_census
from splitrec.datasets.movielens.prepare import (
    ALICE_CSV,
    BOB_CSV,
    BST_FILES,
    THREE_PARTY_FILES,
    prepare_generated,
)

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA_SEED = 1234


def ensure_data(
    cache: Path, rows: int, sequence_length: int = 0, layout: str = "reference"
) -> Path:
    """Party CSVs of ``rows`` generated ratings, made once and kept in ``cache``:
    the reference layout (or ``layout``), or with ``sequence_length`` the bst
    layout."""
    if sequence_length:
        folder, names = cache / f"{rows}-bst{sequence_length}", BST_FILES
        layout = "bst"
    elif layout == "three-party":
        folder, names = cache / f"{rows}-3p", THREE_PARTY_FILES
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
        layout=layout,
        sequence_length=sequence_length or 1,
    )
    return folder


def census_rows(scale: int) -> int:
    """Records of the generated UCI Adult files at ``scale`` times Adult's size
    (``adult.data`` and ``adult.test`` together)."""
    return (DATA_ROWS + TEST_ROWS) * scale


def ensure_census(cache: Path, scale: int) -> Path:
    """The census job's party CSVs from generated UCI Adult files at ``scale``
    times Adult's size, made once and kept in ``cache``."""
    folder = cache / f"adult-x{scale}"
    names = ("alice_adult.csv", "bob_adult.csv")
    if all((folder / name).exists() for name in names):
        return folder
    logger.info("generating UCI Adult at %dx into %s", scale, folder)
    raw = generate_adult(
        folder / "raw", DATA_ROWS * scale, TEST_ROWS * scale, seed=DATA_SEED
    )
    prepare_census(raw.data, folder, raw.test)
    for path in (raw.data, raw.test):
        path.unlink()
    return folder


def run_configs(
    folder: Path, data: Path, batch_size: int, pipeline: int, layout: str = "reference"
) -> LocalConfigs:
    """Configs of one benchmark run: one epoch, no prediction, no export (the
    scoring row asks for one), frequent progress."""
    return LocalConfigs.write(
        folder,
        data,
        layout=layout,
        epochs=1,
        batch_size=batch_size,
        predict="none",
        export="none",
        report_every=10,
        strategy={"pipeline_size": pipeline},
        rpc_timeout=600,
    )


@contextlib.contextmanager
def work_lock(work: Path, role: str) -> Iterator[None]:
    """Holds ``work`` (a benchmark's ``--work`` folder) for one benchmark at a
    time: two would share its runs' party folders and its reports. A second
    one ends at once, naming the first."""
    lock = FolderLock(
        work,
        "bench.lock",
        role,
        "give this run another --work folder, or wait for the other to finish",
    )
    try:
        lock.__enter__()
    except OwnershipError as exc:
        raise SystemExit(f"{role}: {exc}") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)
