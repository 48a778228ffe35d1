"""Local party processes: one log per run, the previous run's kept as ``.1``."""

from __future__ import annotations

import pytest

from common.errors import JobFailedError
from coordinator.local import start_party


def test_each_start_writes_a_fresh_log_and_keeps_the_previous_one(tmp_path):
    log = tmp_path / "logs" / "alice.log"
    log.parent.mkdir()
    log.write_text("the previous run\n")

    with pytest.raises(JobFailedError, match="did not start"):
        start_party(tmp_path / "missing.yaml", log, ready_timeout=60)

    assert (tmp_path / "logs" / "alice.log.1").read_text() == "the previous run\n"
    text = log.read_text()
    assert "the previous run" not in text
    assert "config file not found" in text
