"""Flags out of range are refused by the command line (exit code 2), naming
the flag, the value and the range."""

from __future__ import annotations

import pytest

from splitrec.coordinator.__main__ import parse_args as coordinator_args


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--epochs", "0"], "argument --epochs: 0 is outside the allowed range"),
        (["run", "--epochs", "100001"], "--epochs: 100001 is outside"),
        (["run", "--epochs", "9" * 30], "is outside the allowed range"),
        (["run", "--batch-size", "-1"], "argument --batch-size: -1 is outside"),
        (["run", "--batch-size", "1e9"], "must be an integer in [1, 1000000]"),
        (["demo", "--party", "a.yaml", "--epochs", "-5"], "--epochs: -5 is outside"),
        (["export", "--epoch", "0"], "argument --epoch: 0 is outside"),
        (["predict", "--model", "v", "--dataset", "d", "--batch-size", "0"], "0 is"),
        (["run", "--log-level", "LOUD"], "'LOUD' is not a log level: use one of"),
    ],
)
def test_a_coordinator_flag_out_of_range_exits_2_naming_it(argv, needle, capsys):
    with pytest.raises(SystemExit) as caught:
        coordinator_args([*argv, "--job", "job.yaml"])

    assert caught.value.code == 2
    assert needle in capsys.readouterr().err


def test_flags_within_their_ranges_are_taken():
    args = coordinator_args(
        ["run", "--job", "j.yaml", "--epochs", "100000", "--log-level", "debug"]
    )
    assert (args.epochs, args.log_level) == (100_000, "DEBUG")
