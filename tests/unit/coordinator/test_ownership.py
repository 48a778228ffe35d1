"""The runs-folder lock: one coordinator per folder, stale locks taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from splitrec.common.errors import OwnershipError
from splitrec.coordinator.ownership import LOCK_FILE, RunLock
from tests.support import ROOT


def _hold_in_child(folder):
    """Another process that takes the lock and keeps it until killed."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "proto")!r}]
        from splitrec.coordinator.ownership import RunLock
        with RunLock({str(folder)!r}):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    child = _hold_in_child(tmp_path)
    try:
        with pytest.raises(OwnershipError) as caught, RunLock(tmp_path):
            pass
    finally:
        child.kill()
        child.wait()
    assert f"is in use by coordinator pid {child.pid} on" in str(caught.value)
    assert str(tmp_path / LOCK_FILE) in str(caught.value)


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    child = _hold_in_child(tmp_path)
    child.kill()
    child.wait()

    with RunLock(tmp_path):
        mine = json.loads((tmp_path / LOCK_FILE).read_text())

    assert mine["pid"] == os.getpid()
    assert f"from coordinator pid {child.pid}" in caplog.text
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_same_process_may_enter_its_own_lock_again(tmp_path):
    with RunLock(tmp_path), RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    with RunLock(tmp_path):
        pass


def test_letting_go_leaves_no_lock_file_and_no_folder_the_lock_made(tmp_path):
    kept = tmp_path / "runs" / "kept"
    with RunLock(kept):
        (kept / "manifest.json").write_text("{}")
    with RunLock(tmp_path / "runs" / "refused" / "job"):
        assert (tmp_path / "runs" / "refused" / "job" / LOCK_FILE).exists()

    assert sorted(p.name for p in kept.iterdir()) == ["manifest.json"]
    # The folders it made are gone, up to the first it did not make.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["kept"]


def test_a_refused_lock_leaves_the_holder_s_file_and_makes_nothing(tmp_path):
    child = _hold_in_child(tmp_path / "job")
    try:
        with pytest.raises(OwnershipError), RunLock(tmp_path / "job"):
            pass
        assert json.loads((tmp_path / "job" / LOCK_FILE).read_text())["pid"] == (
            child.pid
        )
    finally:
        child.kill()
        child.wait()
    assert [p.name for p in tmp_path.iterdir()] == ["job"]


def test_a_lock_file_removed_as_it_is_opened_is_not_locked(tmp_path, monkeypatch):
    """The holder removes its file between another's open and lock: the other
    locks a new file at the name, never the removed one."""
    lock = RunLock(tmp_path)
    opened = []
    original = lock._open

    def open_then_lose_it() -> int:
        fd = original()
        if not opened:
            (tmp_path / LOCK_FILE).unlink()
        opened.append(fd)
        return fd

    monkeypatch.setattr(lock, "_open", open_then_lose_it)
    with lock:
        held = os.stat(tmp_path / LOCK_FILE)
        assert len(opened) == 2
        assert (held.st_dev, held.st_ino) == (
            os.fstat(opened[1]).st_dev,
            os.fstat(opened[1]).st_ino,
        )
