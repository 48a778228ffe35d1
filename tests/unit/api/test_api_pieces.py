"""The Python API's pieces that need no party: settings, history, models."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

import splitrec
from splitrec.api.federation import job_config, with_settings
from splitrec.api.history import History
from splitrec.api.local_parties import check_parties, party_config
from splitrec.api.models import custom_model
from splitrec.common.errors import ConfigError
from splitrec.common.history import EpochRecord
from tests.support import epoch_record
from tests.unit.common.test_config import JOB, LABEL_PARTY, PARTY


def _record(epoch: int, val_auc: float, tasks=None, epsilon=None) -> EpochRecord:
    return epoch_record(
        epoch, val_auc, train_loss=0.7 - 0.1 * epoch, tasks=tasks, epsilon=epsilon
    )


def test_settings_override_the_job_and_are_checked_like_a_config():
    config = job_config(JOB)
    changed = with_settings(config, {"epochs": 7, "learning_rate": 0.01, "seed": None})
    assert (changed.epochs, changed.learning_rate, changed.seed) == (7, 0.01, 1234)
    stopping = with_settings(config, {"early_stopping": {"monitor": "val_loss"}})
    assert stopping.early_stopping.monitor == "val_loss"
    with pytest.raises(ConfigError, match="key 'batch_size': 0 is outside"):
        with_settings(config, {"batch_size": 0})
    with pytest.raises(ConfigError, match="key 'epochs': must be an integer"):
        with_settings(config, {"epochs": "5"})
    with pytest.raises(ConfigError, match="'lr' is not a job setting"):
        with_settings(config, {"lr": 0.1})
    with pytest.raises(ConfigError, match="early_stopping.monitor"):
        with_settings(config, {"early_stopping": {"monitor": "accuracy"}})


def test_a_job_and_parties_come_from_objects_mappings_or_files(tmp_path: Path):
    import yaml

    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(JOB))
    assert job_config(path).job == job_config(JOB).job == "test-job"
    assert job_config(job_config(JOB)).source == Path("<memory>")
    assert party_config(PARTY).party == "alice"
    with pytest.raises(ConfigError, match="not int"):
        job_config(3)
    with pytest.raises(ConfigError, match="not list"):
        party_config([])


def test_the_parties_given_must_be_the_jobs():
    job = job_config(JOB)
    alice, bob = party_config(PARTY), party_config(LABEL_PARTY)
    check_parties(job, [bob, alice])
    with pytest.raises(ConfigError, match="one config per party"):
        check_parties(job, [alice])
    with pytest.raises(ConfigError, match="one config per party"):
        check_parties(job, [alice, alice, bob])
    unlabeled = bob.model_copy(update={"labels": ()})
    with pytest.raises(ConfigError, match="has no label"):
        check_parties(job, [alice, unlabeled])


def test_the_history_frame_has_a_row_per_epoch_and_task_columns():
    tasks = {
        name: {
            "train_loss": 0.5,
            "train_auc": 0.6,
            "val_loss": 0.4,
            "val_auc": auc,
            "val_precision": 0.5,
            "val_recall": 0.5,
        }
        for name, auc in (("liked", 0.7), ("loved", math.nan))
    }
    history = History(
        [_record(1, 0.6, tasks), _record(2, 0.8, tasks, epsilon=1.5)], Path("r")
    )
    frame = history.frame
    assert list(frame.index) == [1, 2] and frame.index.name == "epoch"
    assert frame.loc[2, "val_auc"] == 0.8
    assert frame.loc[1, "liked/val_auc"] == 0.7
    assert math.isnan(frame.loc[1, "loved/val_auc"])
    assert "epsilon" in frame.columns and "label_epsilon" not in frame.columns
    assert history.best("val_auc").name == 2
    assert history.best("train_loss").name == 2  # lower is better
    assert history.best("loved/val_auc").name == 1  # NaN everywhere: the first


def test_plot_draws_losses_and_aucs(tmp_path: Path):
    import matplotlib

    matplotlib.use("Agg")
    figure = History([_record(1, 0.6), _record(2, 0.7)], Path("r")).plot()
    assert len(figure.axes) == 2
    figure.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_an_empty_history():
    history = History([], Path("r"))
    assert history.epochs == 0 and history.frame.empty
    with pytest.raises(ValueError, match="no epoch"):
        history.best()


def test_a_custom_model_names_its_functions_module(tmp_path: Path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "def build_base(inputs, width, seed):\n    pass\n"
        "def build_fuse(widths, seed):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_models

    section = custom_model(my_models.build_base, 16, fuse=my_models.build_fuse)
    assert section == {
        "family": "custom",
        "code": str(tmp_path.resolve()),
        "base": "my_models:build_base",
        "output_width": 16,
        "fuse": "my_models:build_fuse",
        "aggregation": "concat",
    }
    sys.modules.pop("my_models", None)


def test_a_function_a_party_cannot_import_is_refused():
    def local_builder(inputs, width, seed):
        return None

    with pytest.raises(ConfigError, match="not a module-level function"):
        custom_model(local_builder, 16)
    main_builder = type(local_builder)(local_builder.__code__, {"__name__": "__main__"})
    main_builder.__module__ = "__main__"
    with pytest.raises(ConfigError, match="%%writefile"):
        custom_model(main_builder, 16)


def test_the_api_is_reachable_from_the_package():
    for name in ("Federation", "History", "EarlyStopping", "CSVLogger", "custom_model"):
        assert getattr(splitrec, name) is getattr(splitrec.api, name)
    assert issubclass(splitrec.ConfigError, splitrec.SplitRecError)
    with pytest.raises(AttributeError):
        splitrec.NoSuchThing  # noqa: B018


def test_the_baseline_needs_every_partys_data_here():
    from splitrec.common.errors import JobFailedError

    with pytest.raises(JobFailedError, match=r"only where every party's config"):
        splitrec.Federation(job_config(JOB)).baseline()
