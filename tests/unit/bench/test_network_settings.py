"""The network table's settings: a base, an optional compensation, an optional
compressor; anything else is refused with the form to use."""

from __future__ import annotations

import pytest

from splitrec.bench.__main__ import parse_args
from splitrec.bench.network import parse_setting


@pytest.mark.parametrize(
    ("name", "strategy", "compression"),
    [
        ("k=1", {"pipeline_size": 1}, {}),
        ("k=3+predict", {"pipeline_size": 3, "compensation": "predict"}, {}),
        ("auto", {"pipeline_size": "auto"}, {}),
        ("auto+int8", {"pipeline_size": "auto"}, {"method": "int8", "ratio": 1.0}),
        (
            "auto+predict+topk_int8:0.3",
            {"pipeline_size": "auto", "compensation": "predict"},
            {"method": "topk_int8", "ratio": 0.3},
        ),
        ("async", {"name": "async", "local_steps": 4, "pipeline_size": "auto"}, {}),
    ],
)
def test_a_setting_names_its_strategy_and_compression(name, strategy, compression):
    assert parse_setting(name) == (strategy, compression)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("k=0", "begins with k=N"),
        ("pipelined", "begins with k=N"),
        ("auto+predict+int8+fp16", "one compressor at most"),
        ("auto+", "one compressor at most"),
        ("auto+zip", "unknown compression 'zip'"),
        ("k=2+topk:2", "ratio must lie in"),
    ],
)
def test_a_bad_setting_is_refused_with_the_form_to_use(name, message):
    with pytest.raises(ValueError, match=message):
        parse_setting(name)


def test_the_command_line_refuses_a_bad_setting(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["--network-settings", "auto,k=two"])
    assert stop.value.code == 2
    assert "setting 'k=two'" in capsys.readouterr().err


def _row(link: str, setting: str, speed: float, auc: float, epochs: int = 1):
    from splitrec.bench.network import NetworkRow

    return NetworkRow(link, setting, 1024, 1000, speed, 1.0, auc, epochs=epochs)


def test_gaps_and_targets_compare_runs_of_the_same_epochs():
    from splitrec.bench.network import network_rows, network_targets

    table = [
        _row("loopback", "k=1", 100.0, 0.80),
        _row("20ms/100Mbit", "k=3", 85.0, 0.798),
        _row("loopback", "k=1", 100.0, 0.81, epochs=5),
        _row("20ms/100Mbit", "k=3", 70.0, 0.809, epochs=5),
    ]
    rows = network_rows(table)
    assert [round(r["auc_gap"], 4) for r in rows] == [0, 0.002, 0, 0.001]
    targets = {
        t["epochs"]: t for t in network_targets(rows) if t["link"] == "20ms/100Mbit"
    }
    assert targets[1]["met"] and targets[1]["value"] == 0.85
    assert not targets[5]["met"] and targets[5]["value"] == 0.7
