"""The benchmark's private ID alignment: two parties' hub and feature sides."""

from __future__ import annotations

from splitrec.bench.psi import run_psi


def test_half_the_ids_are_shared_and_bytes_are_counted_both_ways():
    result = run_psi(200)

    assert result.ids_per_party == 200
    assert result.intersection == 100
    assert result.feature_bytes_sent > 0 and result.label_bytes_sent > 0
    assert result.bytes_per_id > 0
