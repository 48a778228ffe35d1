"""The reference job trained from Parquet (alice's table a folder of shards,
bob's one file), each party encoding and aligning on a local Ray engine, ends
bit-identical to the same job trained from the CSVs the Parquet was made from
in the parties' own processes: every checkpoint, the history and the traffic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.divergence import RunState, difference, run_state
from tests.support import run_demo, write_configs

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"
BATCH = 128
TEXT = {"Gender": str, "Zip-code": str, "Title": str, "Genres": str}


def _to_parquet(csv: Path, target: Path, shards: int) -> None:
    frame = pd.read_csv(csv, dtype=TEXT, keep_default_na=False)
    if shards == 1:
        frame.to_parquet(target, index=False)
        return
    target.mkdir()
    for number, part in enumerate(np.array_split(np.arange(len(frame)), shards)):
        frame.iloc[part].to_parquet(target / f"part-{number:03d}.parquet", index=False)


def _run(folder: Path, data: Path, parquet: bool) -> RunState:
    files = write_configs(folder, data)
    files.edit("job", epochs=1, predict="none", checkpoint={"every_steps": 50})
    if parquet:
        for party, shards in (("alice", 4), ("bob", 1)):
            config = files.read(party)
            target = folder / f"{party}-table"
            _to_parquet(Path(config["data"]["path"]), target, shards)
            files.edit(party, data={"path": str(target), "id_column": "ID"})
            files.edit(party, engine={"min_rows": 0})
    result = run_demo(files, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_state(folder, JOB, ("alice", "bob"))


def test_parquet_and_csv_train_the_same_model_bit_for_bit(small_data, tmp_path):
    from_csv = _run(tmp_path / "csv", small_data, parquet=False)
    from_parquet = _run(tmp_path / "parquet", small_data, parquet=True)

    assert len(from_csv.checkpoints) >= 4
    found = difference(from_csv, from_parquet, BATCH)
    assert found is None, found
