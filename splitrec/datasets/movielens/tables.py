"""Entity tables for online scoring, made from the reference layout's party
CSVs: alice's users (one row per ``UserID``) and bob's movies (one row per
``MovieID``), each with the columns as the party's CSV writes them, without the
rows' IDs, bob's rating and the rating's time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from splitrec.datasets.movielens.errors import DataPreparationError
from splitrec.datasets.movielens.layouts import ALICE_CSV, BOB_CSV

USERS_CSV = "alice_users.csv"
MOVIES_CSV = "bob_movies.csv"


@dataclass(frozen=True)
class EntityTables:
    users: Path
    movies: Path


def _table(path: Path, key: str, drop: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataPreparationError(f"{path}: cannot be read: {exc}") from None
    missing = [c for c in (key, *drop) if c not in frame.columns]
    if missing:
        raise DataPreparationError(
            f"{path}: lacks the column(s) {missing}; expected a party CSV of the "
            "reference layout"
        )
    return frame.drop(columns=drop).drop_duplicates(key)


def write_entity_tables(folder: Path, out: Path | None = None) -> EntityTables:
    """Reads ``alice_ml1m.csv`` and ``bob_ml1m.csv`` in ``folder`` and writes
    ``alice_users.csv`` and ``bob_movies.csv`` into ``out`` (default: the same
    folder)."""
    out = folder if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    tables = EntityTables(out / USERS_CSV, out / MOVIES_CSV)
    users = _table(folder / ALICE_CSV, "UserID", ["ID"])
    movies = _table(folder / BOB_CSV, "MovieID", ["ID", "Rating", "Timestamp"])
    users.to_csv(tables.users, index=False)
    movies.to_csv(tables.movies, index=False)
    return tables
