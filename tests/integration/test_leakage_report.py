"""``python -m splitrec.bench.leakage`` on a tiny data set: one run per setting, every
attack scored (leak AUCs from alice's probe files, model completion from her
checkpoint, feature inference from bob's probe files), one table and the JSON
report; each attack clearly above its baseline without a defense, and each
defense lowering what it is meant to; under secure aggregation (the
three-party job) bob's decoders read the one sum he holds; and without a column
among alice's inputs (the drop ablation) his decoder cannot tell it."""

from __future__ import annotations

import json

import pytest

from tests.support import run_module

pytestmark = pytest.mark.slow

FEATURES = ("Gender", "Age", "Occupation")


def test_leakage_report_scores_every_attack_under_every_setting(tmp_path):
    command = ["splitrec.bench.leakage", "--rows", "13000"]
    command += ["--epochs", "2", "--batch", "256", "--work", str(tmp_path)]
    command += ["--settings", "none,label_dp:1,nopeek:3,secure,drop:Gender"]
    command += ["--known-fraction", "0.05", "--by-part"]

    result = run_module(command)

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "leakage.json").read_text())
    rows = {r["kind"]: r for r in report["results"]}
    assert list(rows) == ["none", "label_dp", "nopeek", "secure", "drop"]
    for row in rows.values():
        assert set(row["attacks"]) == {
            "norm",
            "cosine",
            "model_completion",
            *(f"feature_inference:{name}" for name in FEATURES),
        }
        assert all(len(v) == 2 for v in row["leak_auc_per_epoch"].values())
        assert 0.5 < row["val_auc"] < 1.0
        for name in FEATURES:
            # 5 % of the 11,700 training and of the 1,300 validation rows
            # (bob's probe samples them all).
            passes = row["feature_inference"][name]["passes"]
            assert passes["train"]["known_rows"] == 585
            assert passes["evaluate"]["known_rows"] == 65
    plain = rows["none"]
    assert plain["val_auc_cost"] == 0.0
    assert plain["attacked_tensor"] == "alice"
    # The three-party job: bob holds only the sum, and no plain-sum run to cost
    # it against was asked for.
    secure = rows["secure"]
    assert secure["layout"] == "three-party" and secure["attacked_tensor"] == "sum"
    assert secure["val_auc_cost"] is None
    # Undefended, every attack learns something: the gradients' direction
    # and bob's decoder clearly, alice's head on 40 labels less so.
    assert plain["leak_auc"]["cosine"] > 0.9
    assert plain["model_completion_auc"] > 0.53
    for name in FEATURES:
        found = plain["feature_inference"][name]
        assert found["accuracy"] > found["baseline"] + 0.1, (name, found)
    # Flipped labels leak less of the true ones; ε is reported.
    assert rows["label_dp"]["label_epsilon"] == 1.0
    assert rows["label_dp"]["leak_auc"]["cosine"] < plain["leak_auc"]["cosine"]
    # NoPeek takes most of the features' lead over a guess away.
    lead = {
        kind: sum(
            rows[kind]["attacks"][f"feature_inference:{name}"]["excess"]
            for name in FEATURES
        )
        for kind in ("none", "nopeek")
    }
    assert lead["nopeek"] < lead["none"] / 2, lead
    # The ablation: without the column among alice's inputs, her tensor no
    # longer tells it (it is not a defense, and never meets the target).
    dropped = rows["drop"]["feature_inference"]["Gender"]
    assert rows["drop"]["dropped"] == "Gender"
    assert dropped["accuracy"] < dropped["baseline"] + 0.05, dropped
    assert report["target"]["setting"] != "drop:Gender"
    assert report["target"]["target"].startswith("leakage:")
    # By part: DeepFM's deep output alone still tells Gender; its first-order
    # weight (one number per row) does not go far above a guess.
    parts = rows["none"]["feature_inference_by_part"]
    assert list(parts) == ["deep", "embedding_sum", "square_sum", "first_order"]
    deep = parts["deep"]["Gender"]
    assert deep["accuracy"] > deep["baseline"] + 0.1, parts
    assert "feature_inference_by_part" not in rows["secure"]
    lines = result.stdout.splitlines()
    assert "feature inference from one part of alice's tensor alone:" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("setting"))
    assert "compl." in lines[header] and "Occupation" in lines[header]
    assert [line.split()[0] for line in lines[header + 1 : header + 6]] == [
        "none",
        "label_dp:1",
        "nopeek:3",
        "secure",
        "drop:Gender",
    ]
    assert any(line.startswith("sum, secure: the three-party job") for line in lines)
    assert any(line.startswith("target (") for line in lines)
