"""The runs-folder lock: one coordinator per folder, stale locks taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from common.errors import OwnershipError
from coordinator.ownership import LOCK_FILE, RunLock
from tests.support import ROOT


def _hold_in_child(folder):
    """Another process that takes the lock and keeps it until killed."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "proto")!r}]
        from coordinator.ownership import RunLock
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
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_the_same_process_may_enter_its_own_lock_again(tmp_path):
    with RunLock(tmp_path), RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    with RunLock(tmp_path):
        pass
