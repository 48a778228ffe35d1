"""The scale table's pieces: the process-tree memory watch, its targets and
its text."""

from __future__ import annotations

import subprocess
import sys

import pytest

from splitrec.bench.psi import PsiResult
from splitrec.bench.scale import ScaleRow, format_scale_table, scale_targets
from splitrec.bench.tree_memory import TreeWatch, descendants

# A child that holds 60 MB until told to go, and starts a grandchild that
# holds 30 MB.
_HOLDER = """
import subprocess, sys
block = bytearray(60 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
inner = subprocess.Popen([sys.executable, "-c",
    "b = bytearray(30 * 1024 * 1024)\\n"
    "for i in range(0, len(b), 4096): b[i] = 1\\n"
    "print('up', flush=True); input()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    text=True)
inner.stdout.readline()
print("up", flush=True)
input()
inner.stdin.close(); inner.wait()
"""


def test_the_watch_reads_each_descendant_s_peak():
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "up\n"
        # The watch's own process is the parent: the holder and its child.
        watch = TreeWatch(holder.pid, interval=0.05).start()
        assert len(descendants(holder.pid)) == 1
        watch.look()
        peaks = watch.stop()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)

    [(name, peak)] = peaks.items()
    assert name.startswith("python")
    assert 30 < peak < 60 + 30  # the grandchild's 30 MB, not the holder's 60


def _row(rows: int, epoch: float, alice: float, bob: float) -> ScaleRow:
    parties = {"alice": alice, "bob": bob}
    return ScaleRow(
        rows=rows,
        alignment_seconds=rows / 1e4,
        epoch_seconds=epoch,
        samples_per_second=rows / epoch,
        val_auc=0.7,
        process_mb=parties,
        engine_mb={"alice": 0.0, "bob": 0.0},
        party_mb=parties,
        engine_processes={},
        input_mb={"alice": 1.0, "bob": 2.0},
        output_mb={"alice": 3.0, "bob": 4.0},
    )


def _psi(seconds: float, cpus: int, nodes: dict[str, int], engine="ray") -> PsiResult:
    return PsiResult(1000, 500, seconds, 1, 1, engine, cpus, nodes)


def _verdicts(targets: list[dict]) -> dict[str, tuple[float, bool]]:
    return {t["target"]: (t["value"], t["met"]) for t in targets}


def test_memory_and_time_are_held_against_the_smallest_size():
    rows = [_row(1_000_000, 10.0, 800, 900), _row(10_000_000, 110.0, 900, 1100)]

    found = _verdicts(scale_targets(rows, {}))

    memory = found["scale: peak memory per party, largest / smallest size"]
    assert memory == (pytest.approx(1100 / 900), False)
    linear = found["scale: epoch seconds against linear from the smallest size"]
    assert linear == (pytest.approx(1.1), True)


def test_the_engine_is_held_to_the_pool_s_rate_per_cpu_and_both_nodes():
    psi = {
        "pool": _psi(10.0, 2, {}, engine="pool"),
        "local": _psi(9.0, 2, {"a": 4}),
        "two-node": _psi(12.0, 2, {"a": 3, "b": 1}),
    }

    found = _verdicts(scale_targets([], psi))

    rate = found["scale: PSI IDs/s per CPU, local Ray engine / process pool"]
    assert rate == (pytest.approx(10.0 / 9.0), True)
    assert found["scale: nodes of the two-node cluster that ran PSI tasks"] == (2, True)
    one_node = {**psi, "two-node": _psi(12.0, 2, {"a": 4})}
    nodes = _verdicts(scale_targets([], one_node))
    two_nodes = "scale: nodes of the two-node cluster that ran PSI tasks"
    assert nodes[two_nodes] == (1, False)


def test_the_table_shows_each_size_and_each_engine():
    text = format_scale_table(
        [_row(1_000_000, 10.0, 800, 900)],
        {"two-node": _psi(12.0, 2, {"node-aaaaaaaaaa": 3, "node-bbbbbbbbbb": 1})},
    )

    assert "1,000,000" in text and "two-node" in text
    assert "node-aaa: 3, node-bbb: 1" in text
