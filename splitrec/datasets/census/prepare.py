"""UCI Adult turned into the two party CSVs of the multi-task (MMoE) job.

    alice: ``ID,workclass,fnlwgt,education,education_num,relationship,race,
    capital_gain,capital_loss,hours_per_week,income,marital_status``
    bob: ``ID,age,sex,occupation,native_country``

alice holds both labels' columns: ``income`` (``>50K`` or ``<=50K``) and
``marital_status`` (the second task asks whether it is ``Never-married``). One
row per record, ``adult.data``'s first and then ``adult.test``'s, ID = 0-based
row index; values as in the files (``?`` for a missing one), separated by commas.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from splitrec.datasets.census.adult import read_adult
from splitrec.datasets.files import PreparedFiles, atomic_path

ALICE_CSV = "alice_adult.csv"
BOB_CSV = "bob_adult.csv"
ALICE_COLUMNS = (
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "relationship",
    "race",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "income",
    "marital_status",
)
BOB_COLUMNS = ("age", "sex", "occupation", "native_country")


def prepare_census(
    source: Path, out_dir: Path, test: Path | None = None
) -> PreparedFiles:
    """Writes alice_adult.csv and bob_adult.csv from ``source`` (adult.data) and,
    when given, ``test`` (adult.test) into ``out_dir``."""
    frames = [read_adult(source)]
    if test is not None:
        frames.append(read_adult(test))
    records = pd.concat(frames, ignore_index=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = PreparedFiles(out_dir / ALICE_CSV, out_dir / BOB_CSV, len(records))
    with atomic_path(files.alice) as alice, atomic_path(files.bob) as bob:
        for path, columns in ((alice, ALICE_COLUMNS), (bob, BOB_COLUMNS)):
            table = records[list(columns)]
            table.insert(0, "ID", range(len(records)))
            text = table.to_csv(index=False, lineterminator="\n")
            path.write_bytes(text.encode("utf-8"))
    return files
