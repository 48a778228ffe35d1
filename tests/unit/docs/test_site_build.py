"""The whole site builds strictly: every link and anchor resolves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="splitrec-v1-preparejobrequest"' in api
    layout = (site / "layout" / "index.html").read_text(encoding="utf-8")
    assert 'class="mermaid"' in layout
    assert not (site / "hooks").exists()
