"""The frontier harness on a planted problem: each point's excess and cost are
known, so are the Pareto points and the setting to recommend per threat; the
pictures are written, and bad sweeps are refused."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from splitrec.bench.frontier import (
    THREATS,
    analyse,
    command,
    describe,
    earlier_points,
    main,
    pareto,
    parse_args,
    parse_sweeps,
    sweep,
)
from splitrec.bench.leakage import Setting

# setting → (AUC cost, norm attack's excess, Gender inference's excess).
# nopeek hides Gender cheaply and leaves the labels alone; iso the reverse.
PLANTED = {
    "none": (0.0, 0.30, 0.28),
    "nopeek:1": (0.005, 0.30, 0.20),
    "nopeek:2": (0.010, 0.30, 0.04),
    "nopeek:4": (0.030, 0.30, 0.01),
    "iso:1": (0.012, 0.02, 0.25),
    "iso:2": (0.030, 0.01, 0.20),
}
# An ablation: Gender out of alice's inputs; cheap and hiding it, but no
# defense, so never on a frontier or recommended.
ABLATION = {"drop:Gender": (0.001, 0.30, 0.0)}


def _run(setting) -> dict:
    cost, norm, gender = {**PLANTED, **ABLATION}[setting.name]
    attacks = {
        "norm": {"score": 0.5 + norm, "baseline": 0.5, "excess": norm},
        "feature_inference:Gender": {
            "score": 0.7 + gender,
            "baseline": 0.7,
            "excess": gender,
        },
    }
    return {
        "setting": setting.name,
        "kind": setting.kind,
        "layout": setting.layout,
        "undefended": setting.undefended,
        "dropped": setting.dropped,
        "val_auc": 0.8 - cost,
        "attacks": attacks,
    }


@pytest.fixture
def points() -> list[dict]:
    return sweep(parse_sweeps("nopeek:1,2,4;iso:1,2"), _run)


def test_every_point_is_one_run_costed_against_no_defense(points):
    assert [p["setting"] for p in points] == list(PLANTED)
    assert [p["defense"] for p in points] == ["none", *["nopeek"] * 3, "iso", "iso"]
    for point in points:
        assert point["val_auc_cost"] == pytest.approx(PLANTED[point["setting"]][0])


def test_the_pareto_points_are_the_planted_ones(points):
    assert pareto(points, "feature_inference:Gender") == [
        "none",
        "nopeek:1",
        "nopeek:2",
        "nopeek:4",
    ]
    assert pareto(points, "norm") == ["none", "iso:1", "iso:2"]


def test_each_threat_gets_its_cheapest_stopping_setting(points, tmp_path):
    found = analyse(points, tmp_path)
    label_party, feature_party = (found["recommendations"][t.name] for t in THREATS)
    assert label_party["setting"] == "nopeek:2" and label_party["met"]
    assert label_party["cost"] == pytest.approx(0.01)
    assert label_party["attacks"] == ["feature_inference:Gender"]
    # iso:1 stops the norm attack, but above the 0.01 limit of this threat.
    assert feature_party["setting"] == "iso:1" and not feature_party["met"]
    assert feature_party["per_attack"]["norm"]["cost"] == pytest.approx(0.012)
    for attack, name in found["pictures"].items():
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", attack
    json.dumps(found)  # the report's part is plain JSON


def test_a_point_can_be_run_again_from_its_command():
    args = parse_args(["--rows", "5000", "--epochs", "2"])
    (setting,) = parse_sweeps("mid:0.01:8")["mid"]
    line = command(args, setting)
    assert "--settings none,mid:0.01:8" in line
    assert "--rows 5000 --epochs 2" in line
    assert "--settings none --rows" in command(args, Setting())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nopeek", "KIND:STRENGTH"),
        ("nopeek:", "KIND:STRENGTH"),
        ("nopeek:1;nopeek:2", "swept twice"),
        ("bogus:1", "iso:SCALE"),
        ("nopeek:0", "above 0"),
        (";", "no defense"),
        ("iso:1,2,1", "strength 1 is given twice"),
    ],
)
def test_bad_sweeps_are_refused(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_sweeps(text)


def test_sweeps_run_apart_are_analysed_together(points, tmp_path):
    header = {
        "rows": 1000,
        "epochs": 2,
        "batch_size": 64,
        "known_fraction": 0.05,
        "known_labels": 40,
    }
    # Two sweeps, each with its own undefended run.
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({**header, "points": points[:4]}))
    second.write_text(json.dumps({**header, "points": [points[0], *points[4:]]}))
    out = tmp_path / "out"
    assert main(["--merge", str(first), str(second), "--work", str(out)]) == 0
    report = json.loads((out / "frontier" / "frontier.json").read_text())
    assert [p["setting"] for p in report["points"]] == list(PLANTED)
    assert report["pareto"]["norm"] == ["none", "iso:1", "iso:2"]
    assert (out / "frontier" / "frontier-norm.png").exists()

    for junk in ("[]", '{"rows": 1000}', '{"points": []}'):
        (tmp_path / "junk.json").write_text(junk)
        with pytest.raises(SystemExit, match="junk.json: not a frontier report"):
            main(
                ["--merge", str(first), str(tmp_path / "junk.json"), "--work", str(out)]
            )

    other = tmp_path / "c.json"
    other.write_text(json.dumps({**header, "rows": 5000, "points": points[4:]}))
    with pytest.raises(SystemExit, match="merge sweeps of one size only"):
        main(["--merge", str(first), str(other), "--work", str(out)])


def test_an_interrupted_sweep_goes_on_from_its_saved_points(points):
    saved: list[list[dict]] = []
    ran: list[str] = []

    def run_until_iso(setting) -> dict:
        if setting.kind == "iso":
            raise KeyboardInterrupt
        ran.append(setting.name)
        return _run(setting)

    sweeps = parse_sweeps("nopeek:1,2,4;iso:1,2")
    with pytest.raises(KeyboardInterrupt):
        sweep(sweeps, run_until_iso, saved=saved.append)
    assert [p["setting"] for p in saved[-1]] == [
        "none",
        "nopeek:1",
        "nopeek:2",
        "nopeek:4",
    ]

    ran.clear()

    def run(setting) -> dict:
        ran.append(setting.name)
        return _run(setting)

    again = sweep(sweeps, run, done=saved[-1])
    assert ran == ["iso:1", "iso:2"]
    assert again == points

    # Started again with fewer strengths, in another order: nothing it had is
    # lost from the saved report at any time, and nothing is run again.
    ran.clear()
    saved.clear()
    fewer = parse_sweeps("iso:2;nopeek:4")
    last = sweep(fewer, run, done=again, saved=saved.append)
    assert ran == []
    for report in saved:
        assert sorted(p["setting"] for p in report) == sorted(PLANTED)
    assert sorted(p["setting"] for p in last) == sorted(PLANTED)


def test_only_a_saved_sweep_of_the_same_job_is_taken_up(points, tmp_path):
    header = dict(
        rows=1000, epochs=2, batch_size=64, known_fraction=0.05, known_labels=40
    )
    path = tmp_path / "frontier.json"
    assert earlier_points(path, header) == []
    path.write_text(json.dumps({**header, "points": points[:2]}))
    assert earlier_points(path, header) == points[:2]
    # Another job's sweep, or no report at all, is moved aside, never lost.
    assert earlier_points(path, {**header, "epochs": 5}) == []
    assert not path.exists()
    [aside] = tmp_path.glob("frontier-*.json")
    assert json.loads(aside.read_text())["points"] == points[:2]
    path.write_text("{not json")
    assert earlier_points(path, header) == []
    assert len(list(tmp_path.glob("frontier-*.json"))) == 2


def test_an_ablation_is_reported_but_is_no_defense(tmp_path):
    found = sweep(parse_sweeps("nopeek:1,2,4;drop:Gender"), _run)
    report = {"points": found, **analyse(found, tmp_path)}
    assert "drop:Gender" not in report["pareto"]["feature_inference:Gender"]
    advice = report["recommendations"]["label_party"]
    assert advice["setting"] == "nopeek:2"
    assert (
        "ablation drop:Gender: feature_inference:Gender at 0.700 (baseline 0.700)"
        in (describe(report))
    )


def test_a_second_benchmark_on_the_same_work_folder_is_refused(points, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from splitrec.bench.setup import work_lock\n"
            "with work_lock(Path(sys.argv[1]), 'leakage report'):\n"
            "    print('held', flush=True); time.sleep(60)\n",
            str(tmp_path / "work"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        saved = tmp_path / "a.json"
        saved.write_text(json.dumps({"rows": 1000, "points": points}))
        with pytest.raises(SystemExit, match="frontier sweep: .* is in use by"):
            main(["--merge", str(saved), "--work", str(tmp_path / "work")])
    finally:
        holder.kill()
        holder.wait()
    # Once the other is gone, the folder is free.
    assert main(["--merge", str(saved), "--work", str(tmp_path / "work")]) == 0
