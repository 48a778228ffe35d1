"""``make data`` prepares the parties' CSVs from an ml-1m zip or folder."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from splitrec.datasets.movielens.generate import generate_ml1m
from tests.support import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ml1m_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ml1m")
    files = generate_ml1m(folder / "ml-1m", num_ratings=13_000, seed=3)
    archive = folder / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (files.users, files.movies, files.ratings):
            handle.write(path, f"ml-1m/{path.name}")
    return archive


def _make(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_data_from_zip_and_folder_write_the_same_csvs(
    ml1m_zip: Path, tmp_path: Path
):
    from_zip, from_folder = tmp_path / "zip", tmp_path / "folder"

    zipped = _make("data", f"ML1M={ml1m_zip}", f"DATA_DIR={from_zip}")
    unzipped = _make(
        "data", f"ML1M={ml1m_zip.parent / 'ml-1m'}", f"DATA_DIR={from_folder}"
    )

    assert zipped.returncode == 0, zipped.stderr
    assert unzipped.returncode == 0, unzipped.stderr
    for name in ("alice_ml1m.csv", "bob_ml1m.csv"):
        assert (from_zip / name).read_bytes() == (from_folder / name).read_bytes()
    alice = (from_zip / "alice_ml1m.csv").read_text().splitlines()
    bob = (from_zip / "bob_ml1m.csv").read_text().splitlines()
    assert alice[0] == "ID,UserID,Gender,Age,Occupation,Zip-code"
    assert bob[0] == "ID,MovieID,Rating,Title,Genres,Timestamp"
    assert len(alice) == len(bob) == 13_001
    assert alice[1].startswith("0,") and bob[-1].startswith("12999,")
    assert all("|" not in line.split(",")[4] for line in bob[1:])


def test_make_data_num_sample_keeps_the_first_rows(ml1m_zip: Path, tmp_path: Path):
    result = _make("data", f"ML1M={ml1m_zip}", f"DATA_DIR={tmp_path}", "NUM_SAMPLE=100")
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "bob_ml1m.csv").read_text().splitlines()) == 101


def test_make_data_with_a_corrupt_zip_fails_clearly(tmp_path: Path):
    broken = tmp_path / "ml-1m.zip"
    broken.write_bytes(b"PK\x03\x04 this is not a zip archive")
    result = _make("data", f"ML1M={broken}", f"DATA_DIR={tmp_path / 'out'}")
    assert result.returncode != 0
    assert str(broken) in result.stderr
    assert not (tmp_path / "out" / "alice_ml1m.csv").exists()
