"""Data the job cannot use is refused by PrepareJob with a message, not an
INTERNAL error or a NaN summary: too few common rows for one training batch, a
label of one class over the training rows. One class in the validation rows
only is a warning; the job runs, and its records stay strict JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from splitrec.common.batching import split_rows
from splitrec.common.errors import JobFailedError
from splitrec.config.job import load_job_config
from splitrec.coordinator.job import JobDriver
from tests.support import running_parties, write_configs


def _subset(source: Path, folder: Path, rows: int, rating=None) -> Path:
    """The first ``rows`` rows of each party's CSV; ``rating(id)`` rewrites bob's
    Rating column."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("alice", "bob"):
        header, *lines = (source / f"{name}_ml1m.csv").read_text().splitlines()
        kept = lines[:rows]
        if name == "bob" and rating is not None:
            kept = [_rated(line, rating) for line in kept]
        (folder / f"{name}_ml1m.csv").write_text("\n".join([header, *kept]) + "\n")
    return folder


def _rated(line: str, rating) -> str:
    fields = line.split(",")
    fields[2] = str(rating(fields[0]))
    return ",".join(fields)


def _run(files, **job) -> object:
    files.edit("job", predict="none", **job)
    with running_parties(files):
        config = load_job_config(files.job)
        return JobDriver(config).run()


def test_too_few_common_rows_for_one_training_batch_are_refused(small_data, tmp_path):
    files = write_configs(tmp_path / "cfg", _subset(small_data, tmp_path / "d", 100))

    with pytest.raises(JobFailedError) as caught:
        _run(files, batch_size=128, epochs=1)

    message = str(caught.value)
    assert caught.value.fatal
    assert "FAILED_PRECONDITION" in message
    assert "the parties share 100 rows after alignment, 90 of them for training" in (
        message
    )
    assert "one training batch needs 128 (batch_size)" in message


def test_a_label_of_one_class_is_refused(small_data, tmp_path):
    data = _subset(small_data, tmp_path / "d", 2000, rating=lambda _: 2)
    files = write_configs(tmp_path / "cfg", data)

    with pytest.raises(JobFailedError) as caught:
        _run(files, batch_size=64, epochs=1)

    assert "party bob: the label (Rating > 3) is 0 for every one of the 1800 " in (
        str(caught.value)
    )
    assert "a model cannot learn from one class" in str(caught.value)


def test_one_class_in_the_validation_rows_is_a_warning_and_records_stay_json(
    small_data, tmp_path, caplog
):
    rows = 2000
    ids = sorted(str(i) for i in range(rows))  # the aligned order: IDs as text
    validation = {ids[i] for i in split_rows(rows, 0.1, 1234).validation}
    rng = np.random.default_rng(3)
    data = _subset(
        small_data,
        tmp_path / "d",
        rows,
        rating=lambda key: 1 if key in validation else int(rng.integers(1, 6)),
    )
    files = write_configs(tmp_path / "cfg", data)

    result = _run(files, batch_size=64, epochs=1)

    assert "is 0 for every one of the 200 validation rows, so validation AUC is" in (
        caplog.text
    )
    assert np.isnan(result.records[0].val_auc)
    strict = {"parse_constant": lambda name: pytest.fail(f"{name} in JSON")}
    for name in ("manifest.json", "history.json", "traffic.json"):
        json.loads((result.run_dir / name).read_text(), **strict)
    history = json.loads((result.run_dir / "history.json").read_text())
    assert history[0]["val_auc"] is None
