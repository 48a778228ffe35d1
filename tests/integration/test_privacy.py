"""Privacy over real gRPC: embedding DP, label DP and gradient defenses change
what crosses the wire (embedding DP with ``releases: all`` the validation pass
too), ε reaches the history and the status RPC, and the leakage probe records
attack scores a harness can check against the labels."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pandas as pd
import pytest

from splitrec.bench.leakage_attacks import base_outputs
from splitrec.common.errors import SplitRecError
from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.job import JobDriver
from splitrec.party_server.leakage_probe import RECEIVED, read_received, read_scores
from splitrec.privacy.accountant import embedding_privacy, sampled_gaussian_epsilon
from splitrec.privacy.leakage import leak_auc
from splitrec.v1 import control_pb2, control_pb2_grpc
from tests.support import running_parties

pytestmark = pytest.mark.slow


def _labels_by_id(data_dir) -> pd.Series:
    bob = pd.read_csv(
        data_dir / "bob_ml1m.csv", usecols=["ID", "Rating"], dtype={"ID": str}
    )
    return (bob.set_index("ID")["Rating"] > 3).astype(int)


def _run(files, predict: str = "none", **privacy):
    files.edit("job", epochs=1, predict=predict, privacy=privacy)
    with running_parties(files) as parties:
        result = JobDriver(load_job_config(files.job)).run()
        address = f"127.0.0.1:{parties['alice'].port}"
        with grpc.insecure_channel(address) as channel:
            status = control_pb2_grpc.ControlStub(channel).GetStatus(
                control_pb2.StatusRequest(), timeout=10
            )
    return result, status


def _validation_noise(files) -> np.ndarray:
    """What bob received of alice's validation rows minus alice's clean output
    for them (her last checkpoint's, clipped to norm 1 as the model does)."""
    bob = load_party_config(files.bob)
    received = read_received(bob.output_dir / "deepfm-ml1m" / "leakage", "evaluate")
    ids, clean = base_outputs(files.alice, "deepfm-ml1m", 20_000, 0)
    clean /= np.maximum(1.0, np.linalg.norm(clean, axis=1, keepdims=True))
    order = pd.Series(np.arange(ids.size), index=ids)
    assert received["id"].size == 2_000
    return received[RECEIVED + "alice"] - clean[order.loc[received["id"]]]


def test_embedding_dp_reports_epsilon_in_history_and_status(party_files):
    dp = {"clip_norm": 1.0, "noise_multiplier": 0.8, "delta": 1e-5}
    result, status = _run(
        party_files, embedding_dp=dp, label_dp={"epsilon": 2.0}, leakage_probe=True
    )
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
    # By default the validation pass is not a training release: sent clean.
    assert np.abs(_validation_noise(party_files)).max() < 1e-5


def test_embedding_dp_on_every_release_noises_the_validation_pass(party_files):
    dp = {"clip_norm": 1.0, "noise_multiplier": 0.5, "releases": "all"}
    _run(party_files, embedding_dp=dp, leakage_probe=True)
    # alice's clean output plus noise of standard deviation σ·C in every entry.
    noise = _validation_noise(party_files)
    assert np.std(noise) == pytest.approx(0.5, rel=0.05)
    assert abs(np.mean(noise)) < 0.02


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


def test_embedding_dp_per_user_counts_the_busiest_users_rows(party_files, small_data):
    """alice names her user column: the history and her status report ε per
    user, that of the user with the most training rows (counted here from the
    data and the validation rows bob scored); without the column the job is
    refused at alice, naming the key to add."""
    dp = {"clip_norm": 1.0, "noise_multiplier": 3.0, "per_user": True}
    privacy = {"embedding_dp": dp}
    party_files.edit("job", epochs=1, predict="validation", privacy=privacy)
    with running_parties(party_files), pytest.raises(SplitRecError) as refused:
        JobDriver(load_job_config(party_files.job)).run()
    message = str(refused.value)
    assert "party alice" in message and "data.user_column" in message, message

    alice = party_files.read("alice")
    party_files.edit("alice", data={**alice["data"], "user_column": "UserID"})
    result, status = _run(party_files, predict="validation", **privacy)
    users = pd.read_csv(
        small_data / "alice_ml1m.csv", usecols=["ID", "UserID"], dtype=str
    ).set_index("ID")["UserID"]
    bob = load_party_config(party_files.bob).output_dir / "deepfm-ml1m"
    validation = pd.read_csv(bob / "predictions-validation.csv", dtype={"ID": str})
    busiest = int(users.drop(validation["ID"]).value_counts().max())
    assert busiest > 1
    want = sampled_gaussian_epsilon(3.0, 1.0, busiest, 1e-5)
    history = json.loads((result.run_dir / "history.json").read_text())[-1]
    assert history["epsilon_per_user"] == pytest.approx(want)
    assert history["epsilon_per_user"] > history["epsilon_per_row"]
    assert status.privacy.epsilon_per_user == pytest.approx(want)
