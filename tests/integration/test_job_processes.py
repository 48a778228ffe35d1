"""The whole job with real processes: two party servers and the coordinator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from splitrec.common.names import scoring_run_name
from splitrec.config.party import load_party_config
from splitrec.coordinator.local import start_party
from tests.exports import check_exports
from tests.support import HISTORY_METRICS, ROOT, run_demo

pytestmark = pytest.mark.slow

HISTORY_KEYS = {"epoch", *HISTORY_METRICS, "samples_per_second"}


def _coordinator(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "splitrec.coordinator", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_outputs(files, job_name: str, epochs: int) -> list[dict]:
    run_dir = files.folder / "runs" / job_name
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1))
    for row in history:
        assert set(row) >= HISTORY_KEYS
        assert row["samples_per_second"] > 0
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return history


def _check_later_exports(files, job: str) -> None:
    """``coordinator export`` after the run: the model after epoch 1 from its
    checkpoint, and after epoch 2 (the one the job exported) again: the same
    digests, nothing rewritten."""
    manifest_path = files.folder / "runs" / job / "manifest.json"
    at_end = json.loads(manifest_path.read_text())["exports"]["epoch-2"]
    first = _coordinator("export", "--job", str(files.job), "--epoch", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "model version epoch-1 (after epoch 1, val AUC" in first.stdout
    again = _coordinator("export", "--job", str(files.job), "--epoch", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    exports = json.loads(manifest_path.read_text())["exports"]
    assert exports["epoch-2"] == at_end
    assert exports["epoch-1"]["epoch"] == 1
    assert exports["epoch-1"]["parties"]["alice"] != at_end["parties"]["alice"]
    gone = _coordinator("export", "--job", str(files.job), "--epoch", "3")
    assert gone.returncode == 1
    assert "has finished epochs 1 to 2; epoch 3 is not among them" in gone.stderr


def _check_warm_start(files, job: str) -> None:
    """A job started from the model after epoch 1 ends epoch 2 exactly where
    the uninterrupted job did: the same weights at every party, the same
    validation metrics."""
    warm = files.folder / "warm.yaml"
    config = {
        **files.read("job"),
        "job": "deepfm-warm",
        "init_from": {"job": job, "version": "epoch-1"},
    }
    warm.write_text(yaml.safe_dump(config, sort_keys=False))
    result = _coordinator("run", "--job", str(warm))
    assert result.returncode == 0, result.stderr[-3000:]
    runs = files.folder / "runs"
    uninterrupted = json.loads((runs / job / "manifest.json").read_text())
    started = json.loads((runs / "deepfm-warm" / "manifest.json").read_text())
    # The same model at every party (another job's export: its own export id
    # and file lists).
    for key in ("epoch", "parties"):
        assert (
            started["exports"]["epoch-2"][key]
            == uninterrupted["exports"]["epoch-2"][key]
        )
    assert (
        started["exports"]["epoch-2"]["export_id"]
        != (uninterrupted["exports"]["epoch-2"]["export_id"])
    )
    history = json.loads((runs / "deepfm-warm" / "history.json").read_text())
    before = json.loads((runs / job / "history.json").read_text())
    assert [r["epoch"] for r in history] == [2]
    for key in ("val_auc", "val_loss", "train_loss"):
        assert history[0][key] == before[1][key], key


def _check_warm_start_refused(files, job: str) -> None:
    """A warm start from a version whose state file alice cannot read ends at
    once, naming the party, the version and the file: no retry."""
    refused = files.folder / "refused.yaml"
    config = {
        **files.read("job"),
        "job": "deepfm-refused",
        "init_from": {"job": job, "version": "epoch-1"},
    }
    refused.write_text(yaml.safe_dump(config, sort_keys=False))
    alice = load_party_config(files.alice).output_dir
    state = alice / job / "model" / "epoch-1" / "state.npz"
    kept = state.read_bytes()
    state.write_bytes(b"not the arrays of a model")
    try:
        result = _coordinator("run", "--job", str(refused))
    finally:
        state.write_bytes(kept)
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("splitrec: "), last
    assert "party alice" in last and "'epoch-1'" in last and "state.npz" in last
    assert "trying again" not in result.stderr


def _add_datasets(files) -> None:
    """Each party's "later" dataset: part of its rows, in another order (bob's
    without the rating, as rows to score come)."""
    for name, fraction, seed in (("alice", 0.7, 1), ("bob", 0.6, 2)):
        config = load_party_config(getattr(files, name))
        frame = pd.read_csv(config.data.path, dtype=str, keep_default_na=False)
        later = frame.sample(frac=fraction, random_state=seed)
        if name == "bob":
            later = later.drop(columns=["Rating"])
        path = files.folder / f"{name}_later.csv"
        later.to_csv(path, index=False)
        files.edit(name, datasets={"later": str(path)})


def _train_in_background(files, job: str) -> subprocess.Popen:
    """A one-epoch job named ``job`` that scores all its rows, started in the
    background (its output in the folder's ``<job>.out``)."""
    path = files.folder / f"{job}.yaml"
    config = {**files.read("job"), "job": job, "epochs": 1}
    config.update(predict="all", export="none")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with open(files.folder / f"{job}.out", "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "splitrec.coordinator", "run", "--job", str(path)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _check_apart(files, training: str, scoring: str, shared: int) -> None:
    """A training job named as scoring runs once were, run beside the scoring
    run: each run's records and files sit in its own folders."""
    runs = files.folder / "runs"
    manifest = json.loads((runs / training / "manifest.json").read_text())
    assert manifest["job"] == training and manifest["finished"]
    assert not (runs / training / "scoring.json").exists()
    assert {p.name for p in (runs / scoring).iterdir()} <= {
        "scoring.json",
        "coordinator.lock",
    }
    record = json.loads((runs / scoring / "scoring.json").read_text())
    assert record["shared_rows"] == record["scored_rows"] == shared
    for name in ("alice", "bob"):
        output = load_party_config(getattr(files, name)).output_dir
        assert (output / training / "checkpoints").is_dir()
        assert not (output / scoring / "checkpoints").exists()
    bob = load_party_config(files.bob).output_dir
    trained = pd.read_csv(bob / training / "predictions-all.csv")
    assert len(trained) == 20_000


def _check_batch_scoring(files, job: str, scores: Path) -> None:
    """New rows scored with the exported model: the rows both parties hold,
    each with the score the job gave it. A job named like the scoring run
    trains at the same time, with files of its own."""
    training = _train_in_background(files, f"{job}.epoch-2.later")
    try:
        result = _coordinator(
            "predict",
            *("--job", str(files.job), "--model", "epoch-2", "--dataset", "later"),
        )
        assert training.wait(timeout=600) == 0, (
            files.folder / f"{job}.epoch-2.later.out"
        ).read_text()[-3000:]
    finally:
        training.kill()
    assert result.returncode == 0, result.stderr[-3000:]
    scoring = scoring_run_name(job, "epoch-2", "later")
    bob = load_party_config(files.bob)
    found = pd.read_csv(
        bob.output_dir / scoring / "predictions-all.csv",
        dtype={"ID": str},
    ).set_index("ID")
    _check_apart(files, f"{job}.epoch-2.later", scoring, len(found))
    alice_ids = set(pd.read_csv(files.folder / "alice_later.csv", dtype=str)["ID"])
    bob_ids = set(pd.read_csv(files.folder / "bob_later.csv", dtype=str)["ID"])
    assert set(found.index) == alice_ids & bob_ids
    assert f"{len(found)} rows shared by every party" in result.stdout
    expected = pd.read_csv(scores, dtype={"ID": str}).set_index("ID")["score"]
    shared = expected.index.intersection(found.index)
    assert len(shared) > 500
    np.testing.assert_array_equal(found.loc[shared, "score"], expected.loc[shared])
    unknown = _coordinator(
        "predict", "--job", str(files.job), "--model", "epoch-2", "--dataset", "nope"
    )
    assert unknown.returncode == 1
    assert "no dataset 'nope' in" in unknown.stderr


def test_party_processes_and_coordinator_train_on_generated_data(party_files):
    party_files.edit("job", epochs=2, export="auto")
    _add_datasets(party_files)
    logs = party_files.folder / "logs"
    bob = start_party(party_files.bob, logs / "bob.log", listen="127.0.0.1:0")
    alice = None
    try:
        party_files.point_alice_at(bob.address)
        alice = start_party(party_files.alice, logs / "alice.log", listen="127.0.0.1:0")
        party_files.set_job_addresses(alice.address, bob.address)

        result = _coordinator("run", "--job", str(party_files.job))

        assert result.returncode == 0, result.stderr[-3000:]
        assert "job finished: 2 epochs" in result.stdout
        history = _check_outputs(party_files, "deepfm-ml1m", 2)
        assert history[-1]["val_auc"] > 0.6
        assert history[-1]["train_loss"] < history[0]["train_loss"]
        traffic = json.loads(
            (party_files.folder / "runs" / "deepfm-ml1m" / "traffic.json").read_text()
        )
        assert traffic["train_samples"] == 2 * 18_000
        assert 1.0 < traffic["peer_overhead_ratio"] <= 1.1
        assert traffic["control_to_peer_ratio"] < 0.01
        scores = (
            party_files.folder
            / "runs"
            / "bob"
            / "deepfm-ml1m"
            / "predictions-validation.csv"
        )
        lines = scores.read_text().splitlines()
        assert lines[0] == "ID,score"
        assert len(lines) - 1 == 2000  # 10% of 20,000 rows
        assert "model version epoch-2: each party's part" in result.stdout
        check_exports(party_files, "deepfm-ml1m", "epoch-2", scores)
        _check_later_exports(party_files, "deepfm-ml1m")
        _check_warm_start(party_files, "deepfm-ml1m")
        _check_warm_start_refused(party_files, "deepfm-ml1m")
        _check_batch_scoring(party_files, "deepfm-ml1m", scores)
        # The parties serve on after the job and stop cleanly on SIGTERM.
        assert alice.process.poll() is None and bob.process.poll() is None
    finally:
        codes = [p.stop() for p in (alice, bob) if p is not None]
    assert codes == [0, 0]


def test_demo_command_starts_and_stops_the_parties(party_files):
    result = run_demo(party_files, "--epochs", "1")

    assert result.returncode == 0, result.stderr[-3000:]
    _check_outputs(party_files, "deepfm-ml1m", 1)
    assert "party alice stopped (exit code 0)" in result.stderr
    assert "party bob stopped (exit code 0)" in result.stderr
