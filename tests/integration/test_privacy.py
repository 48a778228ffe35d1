"""Privacy over real gRPC: embedding DP, label DP and gradient defenses change
what crosses the wire, ε reaches the history and the status RPC, and the
leakage probe records attack scores a harness can check against the labels."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pandas as pd
import pytest

from common.config import load_job_config, load_party_config
from common.privacy.accountant import embedding_privacy
from common.privacy.leakage import leak_auc
from coordinator.job import JobDriver
from party_server.leakage_probe import read_scores
from splitrec.v1 import control_pb2, control_pb2_grpc
from tests.support import running_parties

pytestmark = pytest.mark.slow


def _labels_by_id(data_dir) -> pd.Series:
    bob = pd.read_csv(
        data_dir / "bob_ml1m.csv", usecols=["ID", "Rating"], dtype={"ID": str}
    )
    return (bob.set_index("ID")["Rating"] > 3).astype(int)


def _run(files, **privacy):
    files.edit("job", epochs=1, predict="none", privacy=privacy)
    with running_parties(files) as parties:
        result = JobDriver(load_job_config(files.job)).run()
        address = f"127.0.0.1:{parties['alice'].port}"
        with grpc.insecure_channel(address) as channel:
            status = control_pb2_grpc.ControlStub(channel).GetStatus(
                control_pb2.StatusRequest(), timeout=10
            )
    return result, status


def test_embedding_dp_reports_epsilon_in_history_and_status(party_files):
    dp = {"clip_norm": 1.0, "noise_multiplier": 0.8, "delta": 1e-5}
    result, status = _run(party_files, embedding_dp=dp, label_dp={"epsilon": 2.0})
    record = result.records[-1]
    spec = load_job_config(party_files.job)
    history = json.loads((result.run_dir / "history.json").read_text())[-1]
    train_rows = 18_000  # 20,000 rows, 10 % held out for validation
    steps = -(-train_rows // spec.batch_size)
    want = embedding_privacy(spec.privacy, spec.batch_size, train_rows, steps, steps)
    assert history["epsilon"] == pytest.approx(want.epsilon)
    assert history["epsilon_per_row"] == pytest.approx(want.epsilon_per_row)
    assert history["label_epsilon"] == 2.0
    assert 0 < want.epsilon < want.epsilon_per_row
    assert status.privacy.embedding_dp
    assert status.privacy.epsilon == pytest.approx(want.epsilon)
    assert status.privacy.delta == 1e-5
    assert status.privacy.label_epsilon == 2.0
    # Noisy, clipped embeddings and flipped labels still learn something.
    assert record.val_auc > 0.55


def test_probe_scores_every_training_row_and_a_defense_hides_the_labels(
    party_files, small_data
):
    labels = _labels_by_id(small_data)
    alice = load_party_config(party_files.alice)
    probe = alice.output_dir / "deepfm-ml1m" / "leakage"
    leaks = {}
    for defense in ("none", "iso"):
        settings = {"leakage_probe": True}
        if defense != "none":
            settings["gradient_defense"] = {"method": defense, "scale": 4.0}
        result, status = _run(party_files, **settings)
        assert status.privacy.gradient_defense == defense
        scores = read_scores(probe)
        # One score per training row, each row once, under alice's own IDs.
        assert scores["id"].size == 18_000
        assert np.unique(scores["id"]).size == 18_000
        truth = labels.loc[scores["id"]].to_numpy()
        leaks[defense] = {a: leak_auc(truth, scores[a]) for a in ("norm", "cosine")}
        for path in probe.glob("*.npz"):
            path.unlink()
    print(leaks)
    assert leaks["none"]["cosine"] > 0.8, leaks
    assert max(leaks["iso"].values()) < leaks["none"]["cosine"] - 0.1, leaks
