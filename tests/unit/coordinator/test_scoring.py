"""A scoring run's name and folders: apart from every training job's."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitrec.common.errors import ConfigError
from splitrec.common.paths import confined
from splitrec.config.job import JobConfig, validate_job_config
from splitrec.config.party import JobPartyConfig
from splitrec.coordinator.manifest import Manifest, write_manifest
from splitrec.coordinator.scoring import scoring_config

CONFIG = JobConfig(
    "deepfm",
    (JobPartyConfig("alice", "a:1"), JobPartyConfig("bob", "b:1")),
    "bob",
    epochs=5,
    source=Path("job.yaml"),
)


def _exported(runs: Path) -> JobConfig:
    manifest = Manifest("deepfm", "fp", [], [], True)
    manifest.exports = {
        "epoch-2": {
            "epoch": 2,
            "export_id": "e1",
            "parties": {"alice": "ma", "bob": "mb"},
            "files": {"alice": "fa", "bob": "fb"},
        }
    }
    write_manifest(runs / "deepfm", manifest)
    return CONFIG.model_copy(update={"runs_dir": runs})


def test_a_scoring_run_has_a_folder_no_training_job_can_name(tmp_path):
    config = _exported(tmp_path)

    scoring = scoring_config(config, "epoch-2", "new")

    assert scoring.job == "deepfm+epoch-2+new"
    assert (scoring.init_job, scoring.init_version, scoring.epochs) == (
        "deepfm",
        "epoch-2",
        3,
    )
    # A training job named as scoring runs once were keeps a folder of its own.
    training = config.model_copy(update={"job": "deepfm.epoch-2.new"})
    validate_job_config(training)
    folders = {confined(c.runs_dir, c.job) for c in (config, scoring, training)}
    assert len(folders) == 3


def test_no_training_job_takes_a_scoring_run_name(tmp_path):
    config = _exported(tmp_path)
    scoring = scoring_config(config, "epoch-2", "new")

    with pytest.raises(ConfigError, match="'\\+' marks the name of a scoring run"):
        validate_job_config(config.model_copy(update={"job": scoring.job}))
    with pytest.raises(ConfigError, match="not the name of this scoring run"):
        validate_job_config(scoring.model_copy(update={"dataset": "other"}))


def test_scoring_a_version_never_exported_is_refused_before_any_folder(tmp_path):
    config = _exported(tmp_path)

    with pytest.raises(ConfigError, match="no model version 'epoch-9' of job"):
        scoring_config(config, "epoch-9", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deepfm"]
