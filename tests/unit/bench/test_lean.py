"""The lean reference: a centralized Keras DeepFM run as its own process on the
reference layout's CSVs, reporting its speed, AUC, memory and CPUs."""

from __future__ import annotations

import math

import pytest

from splitrec.bench import lean
from splitrec.bench.lean import EpochClock, run_lean
from tests.support import generate_party_csvs

FIELDS = {
    "mode",
    "rows",
    "train_rows",
    "validation_rows",
    "batch_size",
    "epochs",
    "samples_per_second",
    "epoch_seconds",
    "prepare_seconds",
    "val_auc",
    "peak_rss_mb",
    "cpus",
}


# One short epoch; TensorFlow's start-up takes most of it (tens of seconds on a
# busy machine). The limit ends a hang.
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_one_epoch_pinned_to_a_core_reports_every_measure(tmp_path):
    # The generator's smallest data set: 2 ratings for each of its 6,040 users.
    data = generate_party_csvs(tmp_path / "data", num_ratings=12_080)

    result = run_lean(data, 128, tmp_path / "run", timeout=540, cores=[0])

    assert set(result) == FIELDS
    assert result["mode"] == "lean" and result["rows"] == 12_080
    assert (result["train_rows"], result["validation_rows"]) == (10_872, 1_208)
    assert (result["batch_size"], result["epochs"]) == (128, 1)
    assert math.isfinite(result["samples_per_second"])
    assert result["samples_per_second"] > 0
    assert result["epoch_seconds"] > 0 and result["peak_rss_mb"] > 0
    assert 0 < result["val_auc"] <= 1
    assert result["cpus"] == [0]
    assert (tmp_path / "run" / "lean.json").exists()


def test_a_failed_run_raises_with_the_log_tail(tmp_path):
    with pytest.raises(RuntimeError, match="alice_ml1m.csv"):
        run_lean(tmp_path / "missing", 128, tmp_path / "run", timeout=120)


def test_the_steady_rate_starts_after_the_warm_up_batches(monkeypatch):
    clock = EpochClock(rows=1_250, batch=100)  # 13 batches, the last of 50
    now = iter(range(100))
    monkeypatch.setattr(lean.time, "monotonic", lambda: float(next(now)))

    clock.begin()  # t = 0
    for index in range(13):  # batch 9 ends at t = 1, batch 12 at t = 4
        clock.batch_done(index)
    clock.end()  # t = 5

    assert clock.rate() == (1_250 - 1_000) / (4 - 1)
    assert clock.seconds == 5


def test_an_epoch_of_warm_up_batches_alone_has_no_steady_rate():
    clock = EpochClock(rows=1_000, batch=100)
    for index in range(10):
        clock.batch_done(index)

    assert math.isnan(clock.rate())
