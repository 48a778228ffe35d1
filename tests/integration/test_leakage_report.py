"""``python -m bench.leakage`` on a tiny data set: one run per defense, leak AUCs
from the probe files, and the JSON report."""

from __future__ import annotations

import json

import pytest

from tests.support import run_module

pytestmark = pytest.mark.slow


def test_leakage_report_scores_every_defense(tmp_path):
    command = ["bench.leakage", "--rows", "13000"]
    command += ["--epochs", "2", "--batch", "256", "--work", str(tmp_path)]
    command += ["--settings", "none,max_norm,iso:4,label_dp:1"]

    result = run_module(command)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "leakage.json").read_text())
    rows = {r["kind"]: r for r in report["results"]}
    assert list(rows) == ["none", "max_norm", "iso", "label_dp"]
    for row in rows.values():
        assert set(row["leak_auc"]) == {"norm", "cosine"}
        assert all(len(v) == 2 for v in row["leak_auc_per_epoch"].values())
        assert 0.5 <= row["worst_leak_auc"] <= 1.0 and 0.5 < row["val_auc"] < 1.0
    # Undefended, the gradients' direction gives the labels away.
    assert rows["none"]["leak_auc"]["cosine"] > 0.9
    assert rows["none"]["val_auc_cost"] == 0.0
    # max_norm hides the norm; strong isotropic noise also blurs the direction.
    assert rows["max_norm"]["leak_auc"]["norm"] < rows["none"]["leak_auc"]["norm"]
    assert rows["iso"]["leak_auc"]["cosine"] < rows["none"]["leak_auc"]["cosine"] - 0.1
    # Flipped labels leak less of the true ones; ε is reported.
    assert rows["label_dp"]["label_epsilon"] == 1.0
    assert rows["label_dp"]["leak_auc"]["cosine"] < rows["none"]["leak_auc"]["cosine"]
    assert report["target"]["target"].startswith("leakage:")
    assert "cosine leak AUC" in result.stdout and "target" in result.stdout
