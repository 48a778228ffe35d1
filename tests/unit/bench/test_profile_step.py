"""The step profile: each party's stages timed step by step, summed into a
table and written as JSON."""

from __future__ import annotations

import json

import pytest

from splitrec.bench.profile_step import Timings, format_summary, main, summary

ALICE_STAGES = [
    "inputs",
    "compiled update+forward",
    ".numpy() hidden",
    "encode hidden proto",
    "serialize hidden",
    "parse gradient",
    "decode gradient",
]
BOB_STAGES = [
    "parse hidden",
    "decode hidden",
    "inputs (and labels)",
    "compiled fuse step",
    ".numpy() gradient",
    "encode gradient proto",
    "serialize gradient",
    "metrics",
]


def test_a_summary_gives_each_stages_median_and_share_of_the_step():
    timings = Timings()
    for ns in (1000, 3000, 2000):
        timings.add("alice", "a", ns)
        timings.add("alice", "b", 3 * ns)
    timings.message_bytes = {"hidden": 10}

    found = summary(timings)

    stages = found["alice"]["stages"]
    assert stages["a"]["median_us"] == 2.0 and stages["b"]["median_us"] == 6.0
    assert stages["a"]["share"] == 0.25 and found["alice"]["step_us"] == 8.0
    assert found["message_bytes"] == {"hidden": 10}
    table = format_summary(128, found)
    assert "alice" in table and "hidden 10" in table


# Loads the generator's smallest data set and traces three compiled steps: tens
# of seconds on a busy machine. The limit ends a hang.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_profile_times_every_stage_of_both_parties(tmp_path, capsys):
    argv = ["--rows", "12080", "--batches", "128", "--steps", "4", "--warmup", "2"]
    argv += ["--ahead", "2", "--work", str(tmp_path)]

    assert main(argv) == 0

    report = json.loads((tmp_path / "profile_step.json").read_text())
    found = report["batches"]["128"]
    assert list(found["alice"]["stages"]) == ALICE_STAGES
    assert list(found["bob"]["stages"]) == BOB_STAGES
    assert all(row["steps"] == 4 for row in found["bob"]["stages"].values())
    assert list(found["centralized"]["stages"]) == [
        "inputs (and labels)",
        "compiled step",
        "metrics",
    ]
    sizes = found["message_bytes"]
    assert sizes["hidden"] == sizes["gradient"] > 128 * 42 * 4
    assert "split step, both parties" in capsys.readouterr().out
