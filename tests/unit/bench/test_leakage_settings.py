"""The leakage report's settings (parsed from text into job privacy sections),
its target over every attack, and its one table."""

from __future__ import annotations

import argparse

import pytest

from splitrec.bench.leakage import (
    Setting,
    _settings,
    attack_scores,
    describe_target,
    format_parts,
    format_table,
    part_columns,
    target,
    with_costs,
)
from tests.support import write_configs


def test_each_kind_becomes_its_privacy_section():
    parsed = _settings(
        "none,max_norm,iso:4,directional:2,embedding_dp:0.5,embedding_dp:1:3,"
        "label_dp:1,nopeek:0.5,edp:2"
    )
    assert [s.name for s in parsed] == [
        "none",
        "max_norm",
        "iso:4",
        "directional:2",
        "embedding_dp:0.5:1",
        "embedding_dp:1:3",
        "label_dp:1",
        "nopeek:0.5",
        "embedding_dp:2:1",
    ]
    sections = [s.privacy() for s in parsed]
    assert all(section["leakage_probe"] for section in sections)
    assert set(sections[0]) == {"leakage_probe"}
    assert sections[1]["gradient_defense"] == {"method": "max_norm"}
    assert sections[2]["gradient_defense"] == {"method": "iso", "scale": 4.0}
    assert sections[5]["embedding_dp"]["clip_norm"] == 3.0
    assert sections[6]["label_dp"] == {"epsilon": 1.0}
    assert sections[7]["nopeek"] == 0.5
    assert sections[8]["embedding_dp"] == {
        "clip_norm": 1.0,
        "noise_multiplier": 2.0,
        "releases": "training",
    }
    (every,) = _settings("edp_all:0.5")
    assert every.name == "embedding_dp_all:0.5:1"
    assert every.privacy()["embedding_dp"]["releases"] == "all"
    with pytest.raises(argparse.ArgumentTypeError, match="one mechanism of each kind"):
        _settings("edp:1+edp_all:1")


def test_mid_takes_a_weight_and_a_code_width():
    default, narrow = _settings("mid:0.5,mid:2:4")
    assert (default.name, narrow.name) == ("mid:0.5:16", "mid:2:4")
    assert narrow.privacy()["mid"] == {"weight": 2.0, "dim": 4, "releases": "training"}
    (every,) = _settings("mid_all:0.1:8")
    assert every.name == "mid_all:0.1:8"
    assert every.privacy()["mid"]["releases"] == "all"
    with pytest.raises(argparse.ArgumentTypeError, match="one mechanism of each kind"):
        _settings("mid:1+mid_all:1")
    (joined,) = _settings("mid:1+directional:8")
    assert set(joined.privacy()) == {"leakage_probe", "mid", "gradient_defense"}
    for bad in ("mid:1:2.5", "mid:1:5000"):
        with pytest.raises(argparse.ArgumentTypeError, match="DIM must be an integer"):
            _settings(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="above 0"):
        _settings("mid:0")
    with pytest.raises(argparse.ArgumentTypeError, match="mid:WEIGHT"):
        _settings("mid")


def test_mechanisms_join_with_a_plus():
    (setting,) = _settings("nopeek:1+directional:3+label_dp:2")
    assert setting.name == "nopeek:1+directional:3+label_dp:2"
    assert setting.kind == "nopeek+directional+label_dp"
    assert setting.privacy() == {
        "leakage_probe": True,
        "nopeek": 1.0,
        "gradient_defense": {"method": "directional", "scale": 3.0},
        "label_dp": {"epsilon": 2.0},
    }
    assert Setting().name == "none" and Setting().kind == "none"


@pytest.mark.parametrize(
    "text", ["iso", "none:1", "marvell:2", "label_dp", "nopeek:x", "edp:1:2:3"]
)
def test_bad_settings_are_refused_with_the_forms_to_use(text):
    with pytest.raises(argparse.ArgumentTypeError, match="iso:SCALE"):
        _settings(text)


@pytest.mark.parametrize("text", ["nopeek:0", "directional:-1", "iso:nan"])
def test_numbers_must_be_above_zero(text):
    with pytest.raises(argparse.ArgumentTypeError, match="above 0"):
        _settings(text)


def test_two_gradient_defenses_in_one_setting_are_refused():
    with pytest.raises(argparse.ArgumentTypeError, match="one gradient defense"):
        _settings("iso:1+directional:2")


def test_sum_and_secure_run_the_three_party_job():
    plain, secure, defended, reference = _settings(
        "sum,secure,secure+edp:0.5+directional:3,nopeek:1"
    )
    assert [s.name for s in (plain, secure)] == ["sum", "secure"]
    assert (plain.aggregation, secure.aggregation) == ("sum", "secure")
    assert {plain.layout, secure.layout, defended.layout} == {"three-party"}
    assert reference.layout == "reference" and reference.aggregation is None
    # The aggregation is the label party's fuse input, not a privacy section.
    assert secure.privacy() == {"leakage_probe": True}
    assert defended.name == "secure+embedding_dp:0.5:1+directional:3"
    assert set(defended.privacy()) == {
        "leakage_probe",
        "embedding_dp",
        "gradient_defense",
    }
    assert plain.undefended and not secure.undefended and not defended.undefended
    with pytest.raises(argparse.ArgumentTypeError, match="one aggregation"):
        _settings("sum+secure")
    with pytest.raises(argparse.ArgumentTypeError, match="iso:SCALE"):
        _settings("secure:1")


def test_each_job_is_costed_against_its_own_undefended_run():
    rows = with_costs(
        [
            _row("none", 0.80, 1.0),
            _row("nopeek:1", 0.79, 0.6),
            _row("sum", 0.75, 1.0),
            _row("secure", 0.7498, 1.0),
        ]
    )
    costs = [r["val_auc_cost"] for r in rows]
    assert costs == pytest.approx([0.0, 0.01, 0.0, 0.0002])
    lines = format_table(rows).splitlines()
    assert lines[3].startswith("sum ") and lines[4].startswith("secure ")
    assert any(line.startswith("sum, secure: the three-party job") for line in lines)
    # sum is undefended: it never counts as a setting that stops an attack.
    found = target(rows)
    assert all(m["setting"] != "sum" for m in found["not_stopped"].values())


def _row(
    name: str,
    val_auc: float,
    cosine: float,
    completion: float = 0.5,
    gender: float = 0.7,
) -> dict:
    kind = name.split(":")[0]
    row = {
        "setting": name,
        "kind": kind,
        "layout": "three-party" if kind in ("sum", "secure") else "reference",
        "undefended": kind in ("none", "sum"),
        "val_auc": val_auc,
        "leak_auc": {"norm": 0.52, "cosine": cosine},
        "model_completion_auc": completion,
        "feature_inference": {
            "Gender": {"accuracy": gender, "baseline": 0.7},
        },
        "epsilon": None,
        "epsilon_per_row": None,
        "label_epsilon": None,
    }
    row["attacks"] = attack_scores(row)
    return row


def test_every_attack_is_scored_against_its_own_baseline():
    attacks = _row("none", 0.8, 0.9, completion=0.62, gender=0.95)["attacks"]
    assert attacks["cosine"] == {"score": 0.9, "baseline": 0.5, "excess": 0.4}
    assert attacks["model_completion"]["excess"] == pytest.approx(0.12)
    assert attacks["feature_inference:Gender"]["baseline"] == 0.7
    assert attacks["feature_inference:Gender"]["excess"] == pytest.approx(0.25)


def test_target_needs_every_attack_near_its_baseline_at_a_small_cost():
    rows = with_costs(
        [
            _row("none", 0.83, 1.0, completion=0.6, gender=0.99),
            _row("iso:1", 0.825, 0.52, completion=0.6),  # cheap, completion leaks
            _row("iso:4", 0.79, 0.50, completion=0.51),  # hides all, too costly
        ]
    )
    assert [r["val_auc_cost"] for r in rows] == pytest.approx([0.0, 0.005, 0.04])
    assert rows[1]["worst_attack"] == "model_completion"
    found = target(rows)
    assert not found["met"]
    assert list(found["not_stopped"]) == ["model_completion"]
    miss = found["not_stopped"]["model_completion"]
    assert miss["setting"] == "iso:1" and miss["stopped_by"] == "iso:4"
    assert miss["stopped_at_cost"] == pytest.approx(0.04)
    text = describe_target(found)
    assert "model_completion: +0.100 above its baseline at best" in text
    assert "stopped only at cost 0.0400 (iso:4)" in text
    rows = with_costs([*rows, _row("nopeek:1", 0.822, 0.53, completion=0.54)])
    assert target(rows)["met"] and target(rows)["setting"] == "nopeek:1"
    assert "met by nopeek:1" in describe_target(target(rows))


def test_the_table_has_one_line_per_setting_with_every_attack():
    rows = with_costs([_row("none", 0.83, 1.0), _row("nopeek:1", 0.82, 0.6)])
    lines = format_table(rows).splitlines()
    assert "norm" in lines[0] and "compl." in lines[0] and "Gender" in lines[0]
    assert lines[2].startswith("nopeek:1") and "0.700/0.700" in lines[2]
    assert "+0.0100" in lines[2]  # the cost: 0.01 of AUC lost


def test_without_a_cheap_setting_every_attack_says_what_stops_it():
    rows = with_costs(
        [
            _row("none", 0.83, 1.0, completion=0.6, gender=0.99),
            _row("iso:4", 0.79, 0.50, completion=0.58),
        ]
    )
    found = target(rows)
    assert set(found["not_stopped"]) == set(rows[0]["attacks"])
    text = describe_target(found)
    assert "cosine: no defended setting within the cost; stopped only at" in text
    assert "model_completion: no defended setting within the cost; no setting" in text


def test_drop_is_an_ablation_of_one_attacked_column():
    (alone,), (with_nopeek,) = _settings("drop:Gender"), _settings("drop:Age+nopeek:1")
    assert alone.name == "drop:Gender" and alone.dropped == "Gender"
    assert alone.privacy() == {"leakage_probe": True} and not alone.undefended
    assert with_nopeek.dropped == "Age"
    assert with_nopeek.privacy() == {"leakage_probe": True, "nopeek": 1.0}
    for text in ("drop", "drop:UserID", "drop:Gender:1"):
        with pytest.raises(argparse.ArgumentTypeError, match="drop:COLUMN"):
            _settings(text)
    with pytest.raises(argparse.ArgumentTypeError, match="at most one"):
        _settings("drop:Gender+drop:Age")


def test_an_ablation_never_counts_as_a_defense_that_meets_the_target():
    dropped = _row("drop:Gender", 0.829, 0.52, completion=0.51, gender=0.7)
    dropped["dropped"] = "Gender"
    rows = with_costs([_row("none", 0.83, 1.0, gender=0.99), dropped])
    assert rows[1]["val_auc_cost"] == pytest.approx(0.001)
    found = target(rows)
    assert not found["met"]
    assert all(m["stopped_by"] != "drop:Gender" for m in found["not_stopped"].values())


def test_each_part_of_alices_tensor_spans_its_own_columns(tmp_path):
    files = write_configs(tmp_path, tmp_path)
    spans = part_columns(files.alice)
    assert list(spans) == ["deep", "embedding_sum", "square_sum", "first_order"]
    assert spans["deep"].start == 0
    ordered = list(spans.values())
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert before.stop == after.start
    assert spans["first_order"].stop - spans["first_order"].start == 1
    row = {
        "setting": "none",
        "feature_inference_by_part": {
            "deep": {"Gender": {"accuracy": 0.9, "baseline": 0.7}}
        },
    }
    assert format_parts([row]).splitlines()[1].split() == [
        "none",
        "deep",
        "Gender",
        "0.900/0.700",
    ]
    assert format_parts([{"setting": "secure"}]) == ""
