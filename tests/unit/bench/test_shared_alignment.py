"""Split runs of one data set share its alignment cache: the first run's
parties leave theirs beside the data, later runs start from a copy; and a run
already made is found instead of being made again."""

from __future__ import annotations

import shutil

from splitrec.bench.runs import (
    RunResult,
    _share_alignment,
    alignment_paths,
    find_run,
)
from splitrec.bench.setup import run_configs


def test_a_later_run_starts_from_the_first_runs_alignment(small_data, tmp_path):
    small_data = shutil.copytree(small_data, tmp_path / "data")
    first = run_configs(tmp_path / "first", small_data, 128, 1)
    paths = alignment_paths(first)
    assert set(paths) == {"alice", "bob"}
    _share_alignment(first, keep=False)  # nothing shared yet: nothing copied
    assert not any(cache.exists() for _, cache in paths.values())

    for name, (_, cache) in paths.items():  # what each party's alignment left
        cache.parent.mkdir(parents=True)
        cache.write_bytes(f"{name} rows".encode())
    _share_alignment(first, keep=True)
    store, _ = paths["bob"]
    assert store.read_bytes() == b"bob rows"
    assert store.parent == small_data / "alignments" / first.read("job")["job"]

    later = run_configs(tmp_path / "later", small_data, 256, 2)
    _share_alignment(later, keep=False)
    later_paths = alignment_paths(later)
    for name, (_, cache) in later_paths.items():
        assert cache.read_bytes() == f"{name} rows".encode()

    # A later run's own alignment does not replace the shared one.
    store, cache = later_paths["alice"]
    cache.write_bytes(b"other rows")
    _share_alignment(later, keep=True)
    assert store.read_bytes() == b"alice rows"


def _run(mode: str, rows: int, batch: int, pipeline: int) -> RunResult:
    return RunResult(mode, rows, batch, pipeline, 1.0, 1.0, 0.7, {})


def test_a_run_is_found_by_mode_rows_batch_and_pipeline_size():
    runs = [_run("centralized", 100, 256, 1), _run("split", 100, 256, 2)]
    assert find_run(runs, "centralized", 100, 256) is runs[0]
    assert find_run(runs, "split", 100, 256, 2) is runs[1]
    assert find_run(runs, "split", 100, 256) is None  # no exact (size 1) run
    assert find_run(runs, "centralized", 100, 128) is None
