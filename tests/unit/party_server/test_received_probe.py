"""The label party's probe keeps what it received for a fixed sample of the
last epoch's rows of a pass, window by window, as a harness reads it back."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.party_server.leakage_probe import ReceivedProbe, read_received

ROWS = 200


def _probe(folder, limit: int = 50, release: str = "train") -> ReceivedProbe:
    train = np.arange(0, ROWS, 2)  # every other row trains
    return ReceivedProbe(folder, release, train, ROWS, epoch=1, seed=3, limit=limit)


def _step(probe: ReceivedProbe, epoch: int, rows: np.ndarray) -> None:
    ids = np.array([f"id{r}" for r in range(ROWS)])
    tensor = np.stack([rows, -rows], axis=1).astype(np.float32)
    probe.record(epoch, rows, ids[rows], {"alice": tensor})


def test_it_keeps_the_sampled_rows_of_the_last_epoch_with_their_tensors(tmp_path):
    probe = _probe(tmp_path)
    train = np.arange(0, ROWS, 2)
    for epoch in (0, 1):
        for start in range(0, train.size, 32):
            _step(probe, epoch, train[start : start + 32])
        probe.flush(epoch, 0, 3)
    found = read_received(tmp_path)
    # 50 rows of the 100 training rows, each once, from the last epoch only.
    assert found["id"].size == 50 and np.unique(found["id"]).size == 50
    rows = np.array([int(i[2:]) for i in found["id"]])
    assert np.all(rows % 2 == 0)
    np.testing.assert_array_equal(found["received_alice"][:, 0], rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "received-train-epoch-0002-steps-000000-000003.npz"
    ]


def test_the_sample_is_fixed_by_the_seed(tmp_path):
    chosen = []
    for run in ("a", "b"):
        probe = _probe(tmp_path / run)
        _step(probe, 1, np.arange(0, ROWS, 2))
        probe.flush(1, 0, 0)
        chosen.append(read_received(tmp_path / run)["id"])
    np.testing.assert_array_equal(*chosen)


def test_a_cleared_window_leaves_nothing_and_a_missing_folder_says_so(tmp_path):
    probe = _probe(tmp_path, limit=ROWS)
    _step(probe, 1, np.arange(0, ROWS, 2))
    probe.clear()
    assert probe.flush(1, 0, 0) is None
    with pytest.raises(FileNotFoundError, match="no received tensors of the train"):
        read_received(tmp_path)


def test_every_name_it_is_given_is_kept(tmp_path):
    probe = _probe(tmp_path, limit=ROWS)
    rows = np.arange(0, 20, 2)
    probe.record(1, rows, rows.astype(str), {"sum": np.ones((rows.size, 3))})
    probe.flush(1, 0, 0)
    found = read_received(tmp_path)
    assert set(found) == {"id", "received_sum"}
    assert found["received_sum"].shape == (rows.size, 3)


def test_each_pass_is_read_back_apart(tmp_path):
    rows = np.arange(0, ROWS, 2)
    for release, value in (("train", 1.0), ("evaluate", 2.0)):
        probe = _probe(tmp_path, limit=ROWS, release=release)
        probe.record(
            1, rows, rows.astype(str), {"alice": np.full((rows.size, 2), value)}
        )
        probe.flush(1, 0, 0)
    assert read_received(tmp_path, "train")["received_alice"].max() == 1.0
    assert read_received(tmp_path, "evaluate")["received_alice"].min() == 2.0
    with pytest.raises(ValueError, match="release 'predict'"):
        _probe(tmp_path, release="predict")
