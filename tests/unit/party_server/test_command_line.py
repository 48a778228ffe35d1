"""Flags out of range are refused by the command line (exit code 2), naming
the flag, the value and the range."""

from __future__ import annotations

import pytest

from splitrec.party_server.__main__ import parse_args


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--peer-timeout", "0"], "argument --peer-timeout: 0 is outside"),
        (["--peer-timeout", "1e10"], "10000000000 is outside the allowed range"),
        (["--peer-timeout", "inf"], "must be a finite number"),
        (["--intra-op-threads", "2000"], "--intra-op-threads: 2000 is outside"),
        (["--inter-op-threads", "-1"], "--inter-op-threads: -1 is outside"),
        (["--listen", "127.0.0.1:65536"], "port 65536 is outside the allowed range"),
        (["--listen", "50051"], "argument --listen: must be host:port, got '50051'"),
        (["--log-level", "loud"], "'loud' is not a log level"),
    ],
)
def test_a_party_server_flag_out_of_range_exits_2_naming_it(argv, needle, capsys):
    with pytest.raises(SystemExit) as caught:
        parse_args(["--config", "alice.yaml", *argv])

    assert caught.value.code == 2
    assert needle in capsys.readouterr().err


def test_flags_within_their_ranges_are_taken():
    args = parse_args(
        ["--config", "a.yaml", "--listen", "[::]:0", "--log-level", "info"]
    )
    assert (args.listen, args.log_level) == ("[::]:0", "INFO")
