"""``python -m splitrec.bench`` on the smallest data set the generator makes (13,000
ratings), one batch size and one setting per section beyond the reference ones:
every section of ``make bench`` runs and every field of results.json is there."""

from __future__ import annotations

import json

import pytest

from tests.support import run_module

pytestmark = pytest.mark.slow

RUN_FIELDS = {
    "mode",
    "rows",
    "batch_size",
    "pipeline_size",
    "samples_per_second",
    "epoch_seconds",
    "val_auc",
    "peak_rss_mb",
    "wire",
    "engine_peak_mb",
}


# The bench's eleven training runs take minutes on a quiet machine and several
# times that on a busy one: the limits only end a hang.
@pytest.mark.timeout(3600)
def test_bench_writes_results_for_every_run(tmp_path):
    command = ["splitrec.bench", "--rows", "13000", "--batches", "256"]
    command += ["--pipeline", "2", "--scale-rows", "0", "--scale-psi-ids", "0"]
    command += ["--work", str(tmp_path)]
    command += ["--psi-ids", "1000", "--compression", "none,int8"]
    command += ["--compression-rows", "13000", "--compression-epochs", "1"]
    command += ["--compression-batch", "256"]
    command += ["--models", "bst:3", "--model-rows", "13000", "--model-batch", "256"]
    command += ["--secure-rows", "13000", "--secure-batch", "256"]
    command += ["--scoring-rows", "13000", "--scoring-batch", "256"]
    command += ["--network-rows", "13000", "--network-batches", "256"]
    command += ["--network-links", "loopback,50ms/20Mbit"]
    command += ["--network-settings", "auto", "--network-compressors", ""]
    command += ["--lean-rows", "13000", "--lean-batches", "256"]

    result = run_module(command, timeout=3000)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["machine"]["cpu_count"] >= 1 and report["git_commit"]
    runs = report["results"]
    assert [(r["mode"], r["pipeline_size"]) for r in runs] == [
        ("centralized", 1),
        ("split", 1),
        ("split", 2),
    ]
    for run in runs:
        assert set(run) == RUN_FIELDS
        assert run["samples_per_second"] > 0 and 0.5 < run["val_auc"] < 1.0
    central, exact, _ = runs
    assert exact["val_auc"] == pytest.approx(central["val_auc"], abs=1e-4)
    assert set(exact["peak_rss_mb"]) == {"alice", "bob", "coordinator"}
    assert all(mb > 50 for mb in exact["peak_rss_mb"].values())
    assert 1.0 < exact["wire"]["peer_overhead_ratio"] <= 1.1
    names = {t["target"] for t in report["targets"]}
    assert "split/centralized throughput" in names
    assert "pipeline AUC gap" in names
    assert "samples/s" in result.stdout and "results:" in result.stdout
    [psi] = report["psi"]
    assert (psi["ids_per_party"], psi["intersection"]) == (1000, 500)
    assert psi["seconds"] > 0 and psi["bytes_per_id"] > 32
    assert "PSI IDs/party" in result.stdout
    [bst] = report["models"]  # BST over histories of 3 movies (the bst layout)
    assert bst["family"] == "bst:3" and bst["pipeline_size"] == 2
    assert bst["split_samples_per_second"] > 0 and bst["ratio"] > 0
    assert bst["val_auc_split"] == pytest.approx(bst["val_auc_centralized"], abs=1e-4)
    assert bst["peak_party_mb"] > 50
    model_targets = [t for t in report["targets"] if t.get("family") == "bst:3"]
    assert {t["target"] for t in model_targets} == {
        "model: split AUC = centralized AUC (pipeline 1)",
        "model: split/centralized throughput",
    }
    assert "AUC central" in result.stdout
    none, int8 = report["compression"]
    assert (none["method"], int8["method"]) == ("none", "int8")
    shrink = none["peer_bytes_per_sample"] / int8["peer_bytes_per_sample"]
    assert 3.5 < shrink <= 4.0
    targets = {t["target"] for t in report["targets"]}
    assert "compression: >= 4x fewer bytes, AUC within 0.005" in targets
    assert "compression" in result.stdout and "shrink" in result.stdout
    plain, secure = report["secure_aggregation"]
    assert (plain["aggregation"], secure["aggregation"]) == ("sum", "secure")
    assert secure["val_auc"] == pytest.approx(plain["val_auc"], abs=0.001)
    assert set(secure["peak_rss_mb"]) == {"alice", "carol", "bob", "coordinator"}
    # A masked value takes 8 bytes where a float takes 4 (gradients stay 4).
    grown = secure["peer_bytes_per_sample"] / plain["peer_bytes_per_sample"]
    assert 1.3 < grown < 1.6
    assert "secure aggregation" in result.stdout
    [scoring] = report["scoring"]
    assert scoring["scored_rows"] == 13000  # the whole file, every row shared
    assert scoring["score_rows_per_second"] > 0
    assert scoring["train_samples_per_second"] > 0
    assert "scoring 13,000 rows >= training samples/s (batch 256)" in targets
    assert "batch scoring with an exported model" in result.stdout
    near, far = report["network"]
    assert (near["link"], far["link"]) == ("loopback", "50ms/20Mbit")
    assert {near["setting"], far["setting"]} == {"auto"}
    # One epoch of 46 steps, all of them warm-up: the same exact run on both links.
    assert far["val_auc"] == near["val_auc"]
    assert far["auc_gap"] is None  # no exact (k=1) run to compare with
    assert 0 < far["vs_loopback"] < 1
    assert "network: the reference job across a shaped link" in result.stdout
    [lean] = report["lean"]
    assert lean["lean_samples_per_second"] > 0 and 0.5 < lean["lean_val_auc"] < 1
    # The split job on loopback is the network table's run, not a second one.
    assert lean["split_samples_per_second"] == near["samples_per_second"]
    assert lean["split_pinned_samples_per_second"] > 0
    # The split model's centralized twin learns what the split job learns.
    assert lean["twin_val_auc"] == pytest.approx(near["val_auc"], abs=1e-4)
    assert lean["split_vs_twin"] == pytest.approx(
        near["samples_per_second"] / lean["twin_samples_per_second"]
    )
    assert {t["target"] for t in report["targets"]} >= {
        "split / lean samples/s",
        "split_pinned / lean samples/s",
    }
    assert "lean: a single-process Keras DeepFM" in result.stdout
    # Only the scoring row exports a model; the other runs train and end.
    exported = {p.parents[3].name for p in tmp_path.glob("work/*/runs/*/*/model")}
    assert exported == {"scoring-13000"}
    assert report["scale"] == {"rows": [], "psi": {}}
