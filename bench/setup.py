"""Data sets and config files for benchmark runs."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from common.movielens.generate import generate_ml1m
from common.movielens.prepare import prepare_party_csvs

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "configs"
DATA_SEED = 1234


def ensure_data(cache: Path, rows: int) -> Path:
    """Party CSVs of ``rows`` generated ratings, made once and kept in ``cache``."""
    folder = cache / f"{rows}"
    if (folder / "alice_ml1m.csv").exists() and (folder / "bob_ml1m.csv").exists():
        return folder
    logger.info("generating %d ratings into %s", rows, folder)
    raw = generate_ml1m(folder / "raw", num_ratings=rows, seed=DATA_SEED)
    prepare_party_csvs(raw.ratings.parent, folder)
    for path in (raw.users, raw.movies, raw.ratings):
        path.unlink()
    return folder


class RunConfigs:
    """Party and job configs of one run, written from the repository's examples."""

    def __init__(
        self, folder: Path, data: Path, batch_size: int, pipeline: int
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.alice = folder / "alice.yaml"
        self.bob = folder / "bob.yaml"
        self.job = folder / "job.yaml"
        for name in ("alice", "bob"):
            config = self._template(name)
            config["data"]["path"] = str(data / f"{name}_ml1m.csv")
            config["output_dir"] = str(folder / name)
            config["listen"] = "127.0.0.1:0"
            self._write(name, config)
        job = self._template("job")
        job.update(
            epochs=1,
            batch_size=batch_size,
            runs_dir=str(folder / "runs"),
            predict="none",
            report_every=10,
            strategy={"pipeline_size": pipeline},
            rpc_timeout=600,
        )
        self._write("job", job)

    def _template(self, name: str) -> dict:
        return yaml.safe_load((TEMPLATES / f"{name}.yaml").read_text())

    def _write(self, name: str, config: dict) -> None:
        (self.folder / f"{name}.yaml").write_text(
            yaml.safe_dump(config, sort_keys=False)
        )

    def point_alice_at(self, bob: str) -> None:
        """Gives alice bob's address once bob's port is known."""
        config = yaml.safe_load(self.alice.read_text())
        config["peers"] = [{"name": "bob", "address": bob}]
        self._write("alice", config)

    def set_job_addresses(self, alice: str, bob: str) -> None:
        job = yaml.safe_load(self.job.read_text())
        job["parties"] = [
            {"name": "alice", "address": alice},
            {"name": "bob", "address": bob},
        ]
        self._write("job", job)
