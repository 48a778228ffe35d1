"""The example notebooks run from start to end in a real Jupyter kernel, small,
and leave no party process behind; the committed notebooks carry no outputs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import ROOT, alive, descendants

NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
# Seconds one cell may run: only to catch a hang.
CELL_TIMEOUT = 300
# The notebooks' own knobs, turned down for the suite.
SMALL = {"SPLITREC_NOTEBOOK_RATINGS": "20000", "SPLITREC_NOTEBOOK_EPOCHS": "2"}


@dataclass
class Executed:
    """A notebook run: the notebook with its outputs, each code cell's time
    (index, seconds), and the party processes still running below the kernel
    after its last cell."""

    notebook: nbformat.NotebookNode
    seconds: list[tuple[int, float]] = field(default_factory=list)
    leftovers: dict[int, str] = field(default_factory=dict)


def party_processes(pid: int) -> dict[int, str]:
    """The ``splitrec.party_server`` processes below ``pid``: their command lines."""
    found = {}
    for child in descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        line = command.replace(b"\0", b" ").decode(errors="replace").strip()
        if "splitrec.party_server" in line and alive(child):
            found[child] = line
    return found


def execute(path: Path, folder: Path, env: Mapping[str, str]) -> Executed:
    """Runs every cell of the notebook at ``path`` in a fresh ``python3`` kernel
    working in ``folder``, with ``env`` added to its environment. A cell that
    fails or runs past ``CELL_TIMEOUT`` raises; the party processes the kernel
    left are noted, then killed, before the kernel shuts down."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    executed = Executed(notebook)
    with client.setup_kernel(env={**os.environ, **env}):
        kernel = client.km.provisioner.pid
        try:
            for index, cell in enumerate(notebook.cells):
                started = time.monotonic()
                client.execute_cell(cell, index)
                if cell.cell_type == "code":
                    executed.seconds.append((index, time.monotonic() - started))
        finally:
            executed.leftovers = party_processes(kernel)
            for pid in executed.leftovers:
                os.kill(pid, signal.SIGKILL)
    return executed


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_to_the_end_and_stops_its_parties(
    path: Path, tmp_path: Path
) -> None:
    executed = execute(path, tmp_path, SMALL)

    for index, seconds in executed.seconds:
        print(f"{path.stem} cell {index}: {seconds:.1f} s")
    assert executed.leftovers == {}, "party processes outlived the notebook"
    errors = [
        output
        for cell in executed.notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors == []
    # The parties' files went to the notebook's own folder under the working one.
    written = {p.name for p in (tmp_path / "splitrec-notebooks").iterdir()}
    assert written == {path.stem}


def test_notebooks_exist_and_are_committed_without_outputs() -> None:
    assert {p.stem for p in NOTEBOOKS} >= {
        "01_split_deepfm_movielens",
        "02_two_task_mmoe",
        "03_export_and_score_online",
    }
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "python3", path.name
        assert notebook.cells[0].cell_type == "markdown", path.name
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name}: a cell has outputs"
                assert cell.execution_count is None, f"{path.name}: a cell ran"
