"""The leakage report's settings: parsed from text into job privacy sections."""

from __future__ import annotations

import argparse

import pytest

from bench.leakage import Setting, _settings, target, with_costs


def test_each_kind_becomes_its_privacy_section():
    parsed = _settings(
        "none,max_norm,iso:4,directional:2,embedding_dp:0.5,embedding_dp:1:3,label_dp:1"
    )
    assert [s.name for s in parsed] == [
        "none",
        "max_norm",
        "iso:4",
        "directional:2",
        "embedding_dp:0.5:1",
        "embedding_dp:1:3",
        "label_dp:1",
    ]
    sections = [s.privacy() for s in parsed]
    assert all(section["leakage_probe"] for section in sections)
    assert "gradient_defense" not in sections[0]
    assert sections[1]["gradient_defense"] == {"method": "max_norm"}
    assert sections[2]["gradient_defense"] == {"method": "iso", "scale": 4.0}
    assert sections[5]["embedding_dp"] == {"clip_norm": 3.0, "noise_multiplier": 1.0}
    assert sections[6]["label_dp"] == {"epsilon": 1.0}


@pytest.mark.parametrize("text", ["iso", "none:1", "marvell:2", "label_dp"])
def test_bad_settings_are_refused_with_the_forms_to_use(text):
    with pytest.raises(argparse.ArgumentTypeError, match="iso:SCALE"):
        _settings(text)


def _row(name: str, kind: str, val_auc: float, norm: float, cosine: float) -> dict:
    return {
        "setting": name,
        "kind": kind,
        "val_auc": val_auc,
        "leak_auc": {"norm": norm, "cosine": cosine},
    }


def test_target_needs_every_attack_low_and_a_small_cost():
    rows = with_costs(
        [
            _row("none", "none", 0.83, 0.61, 1.0),
            _row("iso:1", "iso", 0.825, 0.55, 0.9),  # cheap, still leaks
            _row("iso:4", "iso", 0.79, 0.50, 0.50),  # hides, too costly
        ]
    )
    assert [r["val_auc_cost"] for r in rows] == pytest.approx([0.0, 0.005, 0.04])
    assert not target(rows)["met"]
    rows = with_costs([*rows, _row("iso:2", "iso", 0.822, 0.52, 0.58)])
    assert target(rows)["met"] and target(rows)["setting"] == "iso:2"
    assert Setting("none").name == "none"
