"""Shared fixtures: a small generated data set and party configs that point at it."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The documentation generators (docs/hooks/docgen) are tested, and the package
# graph they draw is the one the layout tests check.
_HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks"
if str(_HOOKS) not in sys.path:
    sys.path.insert(0, str(_HOOKS))

from splitrec.common.signals import STOP_SIGNALS  # noqa: E402
from splitrec.datasets.census.generate import generate_adult  # noqa: E402
from splitrec.datasets.census.prepare import prepare_census  # noqa: E402
from tests.support import (  # noqa: E402
    PartyFiles,
    generate_party_csvs,
    misaligned_copy,
    write_configs,
)

# The stop signals' handlers this test process started with.
_FIRST_HANDLERS = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}


@pytest.fixture(autouse=True)
def _signal_handlers() -> Iterator[None]:
    """Each test starts and ends with the stop signals' handlers the test
    process started with: a command's main() run in-process (in a test or in a
    fixture of a wider scope) installs its own, which must not turn a later
    test's Ctrl-C into something else."""
    for signum, handler in _FIRST_HANDLERS.items():
        signal.signal(signum, handler)
    yield
    for signum, handler in _FIRST_HANDLERS.items():
        signal.signal(signum, handler)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Party CSVs made from 20,000 generated ml-1m-format ratings."""
    return generate_party_csvs(
        tmp_path_factory.mktemp("small-data"), num_ratings=20_000
    )


@pytest.fixture
def party_files(small_data: Path, tmp_path: Path) -> PartyFiles:
    """Configs for alice, bob and the job, on the small data set, ports unset."""
    return write_configs(tmp_path, small_data)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development CA with certificates for alice, bob, carol and the
    coordinator."""
    from splitrec.security.certs import write_bundle

    folder = tmp_path_factory.mktemp("certs")
    write_bundle(folder, ["alice", "bob", "carol", "coordinator"])
    return folder


@pytest.fixture
def tls_party_files(small_data: Path, certs: Path, tmp_path: Path) -> PartyFiles:
    """Like ``party_files``, with mutual TLS and the ``certs`` certificates."""
    return write_configs(tmp_path, small_data, certs)


@pytest.fixture(scope="session")
def sequence_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 generated ratings (with their sequential structure) in both
    layouts: the reference CSVs and the BST ones."""
    return generate_party_csvs(
        tmp_path_factory.mktemp("sequence-data"), 100_000, ("reference", "bst")
    )


@pytest.fixture(scope="session")
def three_party_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice's, carol's and bob's CSVs (the three-party layout) made from
    20,000 generated ml-1m-format ratings."""
    folder = tmp_path_factory.mktemp("three-party-data")
    return generate_party_csvs(folder, num_ratings=20_000, layouts=("three-party",))


@pytest.fixture(scope="session")
def census_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated UCI Adult files (3,000 + 1,000 records) as the census job's two
    party CSVs."""
    folder = tmp_path_factory.mktemp("census-data")
    raw = generate_adult(folder / "raw", rows=3000, test_rows=1000, seed=3)
    prepare_census(raw.data, folder, raw.test)
    return folder


@pytest.fixture(scope="session")
def misaligned_data(
    small_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    """``small_data`` with different row sets and orders per party, and the
    number of IDs both hold."""
    return misaligned_copy(small_data, tmp_path_factory.mktemp("misaligned"))


@pytest.fixture
def misaligned_files(misaligned_data: tuple[Path, int], tmp_path: Path) -> PartyFiles:
    return write_configs(tmp_path, misaligned_data[0])
