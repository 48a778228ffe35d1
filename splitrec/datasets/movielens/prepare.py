"""Turn an ml-1m folder or zip into the party CSVs of a layout.

The reference layout (the split DeepFM tutorial):

    alice (user side): ``ID,UserID,Gender,Age,Occupation,Zip-code``
    bob (movie side): ``ID,MovieID,Rating,Title,Genres,Timestamp``

The ``bst`` layout (the behaviour-sequence transformer tutorial):

    alice: ``ID,Gender,Age,Occupation``
    bob: ``ID,UserID,History,MovieID,Genres,Rating``

where ``History`` holds the MovieIDs the same user rated before this rating,
the last ``sequence_length`` of them in timestamp order (ties: file order),
oldest first, separated by spaces and padded in front with ``0`` (no MovieID).

The ``three-party`` layout (two feature parties and a label party):

    alice (user side): ``ID,UserID,Gender,Age,Occupation,Zip-code``
    carol (movie catalogue): ``ID,Genres,Year``
    bob (label party): ``ID,UserID,MovieID,Rating``

where ``Year`` is the release year at the end of the movie's title, ``(YYYY)``;
it is left empty for a title without one.

One row per ratings.dat line, in file order, ID = 0-based line index. Commas in
titles become ``_`` and ``|`` in genres becomes a space; values are joined by
commas without quoting.
"""

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from splitrec.datasets.files import PreparedFiles
from splitrec.datasets.movielens._source import DatText, read_dat_files
from splitrec.datasets.movielens.download import (
    ML1M_SHA256,
    ML1M_URL,
    download_ml1m,
    verify_sha256,
)
from splitrec.datasets.movielens.errors import DataPreparationError
from splitrec.datasets.movielens.layouts import (
    ALICE_COLUMNS,
    ALICE_CSV,
    BOB_COLUMNS,
    BOB_CSV,
    BST_ALICE_COLUMNS,
    BST_BOB_COLUMNS,
    BST_FILES,
    CAROL_COLUMNS,
    LAYOUTS,
    THREE_PARTY_BOB_COLUMNS,
    THREE_PARTY_FILES,
    Joined,
    histories,
    write_layout,
)

__all__ = [
    "ALICE_COLUMNS",
    "ALICE_CSV",
    "BOB_COLUMNS",
    "BOB_CSV",
    "BST_ALICE_COLUMNS",
    "BST_BOB_COLUMNS",
    "BST_FILES",
    "CAROL_COLUMNS",
    "LAYOUTS",
    "ML1M_SHA256",
    "ML1M_URL",
    "THREE_PARTY_BOB_COLUMNS",
    "THREE_PARTY_FILES",
    "DataPreparationError",
    "PreparedFiles",
    "download_ml1m",
    "histories",
    "prepare_generated",
    "prepare_party_csvs",
    "verify_sha256",
]

logger = logging.getLogger(__name__)

DEFAULT_SEQUENCE_LENGTH = 4
MAX_SEQUENCE_LENGTH = 1024
USER_FIELDS = ("UserID", "Gender", "Age", "Occupation", "Zip-code")
MOVIE_FIELDS = ("MovieID", "Title", "Genres")
RATING_FIELDS = ("UserID", "MovieID", "Rating", "Timestamp")
_MAX_DIGITS = 18
_FIX = "fix or remove the line, or use an unmodified ml-1m copy"


@dataclass(frozen=True)
class _Table:
    """users.dat or movies.dat: integer keys and the CSV text after the key."""

    ids: np.ndarray
    rows: np.ndarray  # object array of str


def prepare_party_csvs(
    source: Path,
    out_dir: Path,
    num_sample: int = -1,
    layout: str = "reference",
    sequence_length: int = DEFAULT_SEQUENCE_LENGTH,
) -> PreparedFiles:
    """Write the party CSVs of ``layout`` for ``source`` into ``out_dir``:
    alice_ml1m.csv and bob_ml1m.csv (reference), alice_bst.csv and bob_bst.csv
    (bst), or alice_3p.csv, carol_3p.csv and bob_3p.csv (three-party).

    ``source`` is an ml-1m folder or zip; ``num_sample`` -1 keeps every rating,
    N > 0 keeps the first N (histories then come from those N alone).
    """
    limit = _check_num_sample(num_sample)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {list(LAYOUTS)}")
    if not 1 <= sequence_length <= MAX_SEQUENCE_LENGTH:
        raise ValueError(
            f"sequence_length must be 1 to {MAX_SEQUENCE_LENGTH}, got {sequence_length}"
        )
    texts = read_dat_files(Path(source))
    users = _parse_table(texts["users.dat"], USER_FIELDS, _user_values)
    movies = _parse_table(texts["movies.dat"], MOVIE_FIELDS, _movie_values)
    ratings_dat = texts["ratings.dat"]
    ratings = _parse_ratings(ratings_dat, limit)
    user_pos = _lookup(users, ratings[:, 0], "UserID", ratings_dat, "users.dat")
    movie_pos = _lookup(movies, ratings[:, 1], "MovieID", ratings_dat, "movies.dat")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    joined = Joined(ratings, users.rows, user_pos, movies.rows, movie_pos)
    paths = write_layout(LAYOUTS[layout], out_dir, joined, sequence_length)
    logger.info(
        "wrote %s rows to %s", len(ratings), ", ".join(map(str, paths.values()))
    )
    return PreparedFiles(rows=len(ratings), **paths)


def _check_num_sample(num_sample: int) -> int:
    if isinstance(num_sample, bool) or not isinstance(num_sample, int | np.integer):
        raise TypeError(f"num_sample must be an int, got {num_sample!r}")
    if num_sample == -1 or num_sample > 0:
        return int(num_sample)
    raise ValueError(
        f"num_sample must be -1 (all ratings) or a positive count, got {num_sample}"
    )


def _user_values(values: list[str]) -> list[str]:
    return values


def _movie_values(values: list[str]) -> list[str]:
    title, genres = values
    return [title.replace(",", "_"), genres.replace("|", " ")]


def _iter_lines(dat: DatText) -> Iterator[tuple[int, str]]:
    """(line number, line) pairs without line ends; trailing blank lines dropped."""
    lines = dat.text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line.removesuffix("\r")


def _malformed(dat: DatText, number: int, problem: str) -> DataPreparationError:
    return DataPreparationError(f"{dat.origin} line {number}: {problem}; {_FIX}")


def _split_fields(
    dat: DatText, number: int, line: str, fields: tuple[str, ...]
) -> list[str]:
    values = line.split("::")
    if len(values) == len(fields):
        return values
    if not line.strip():
        raise _malformed(dat, number, "empty line")
    raise _malformed(
        dat,
        number,
        f"expected {len(fields)} fields {'::'.join(fields)}, got {len(values)} "
        f"in {line[:100]!r}",
    )


def _parse_int(dat: DatText, number: int, field: str, value: str) -> int:
    if value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    raise _malformed(dat, number, f"{field} {value[:40]!r} is not a whole number")


def _parse_table(
    dat: DatText,
    fields: tuple[str, ...],
    convert: Callable[[list[str]], list[str]],
) -> _Table:
    ids: list[int] = []
    rows: list[str] = []
    first_line: dict[int, int] = {}
    for number, line in _iter_lines(dat):
        values = _split_fields(dat, number, line, fields)
        key = _parse_int(dat, number, fields[0], values[0])
        if key in first_line:
            problem = f"duplicate {fields[0]} {key} (first on line {first_line[key]})"
            raise _malformed(dat, number, problem)
        first_line[key] = number
        converted = convert(values[1:])
        if any("," in value for value in converted):
            raise _malformed(dat, number, "a field contains a comma")
        ids.append(key)
        rows.append(",".join(converted))
    if not ids:
        raise DataPreparationError(f"{dat.origin} holds no records; {_FIX}")
    return _Table(np.array(ids, dtype=np.int64), np.array(rows, dtype=object))


def _parse_ratings(dat: DatText, limit: int) -> np.ndarray:
    """(n, 4) int64 array of UserID, MovieID, Rating, Timestamp."""
    values = _ratings_fast(dat.text)
    if values is None:
        values = _ratings_slow(dat, limit)
    elif limit > 0:
        values = values[:limit]
    if len(values) == 0:
        raise DataPreparationError(f"{dat.origin} holds no ratings; {_FIX}")
    bad = np.flatnonzero((values[:, 2] < 1) | (values[:, 2] > 5))
    if bad.size:
        raise _malformed(
            dat, int(bad[0]) + 1, f"Rating {values[bad[0], 2]} is outside 1..5"
        )
    return values


def _ratings_fast(text: str) -> np.ndarray | None:
    """Parse well-formed ratings with the C CSV parser; None if anything is off."""
    if "," in text or not text.strip():
        return None
    try:
        frame = pd.read_csv(
            io.StringIO(text.replace("::", ",")),
            header=None,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except (ValueError, OverflowError):  # pandas ParserError is a ValueError
        return None
    if frame.shape[1] != len(RATING_FIELDS):
        return None
    if not all(pd.api.types.is_integer_dtype(dtype) for dtype in frame.dtypes):
        return None
    return frame.to_numpy(dtype=np.int64)


def _ratings_slow(dat: DatText, limit: int) -> np.ndarray:
    """Line-by-line parse that names the first malformed line."""
    rows: list[list[int]] = []
    for number, line in _iter_lines(dat):
        if 0 < limit < number:
            break
        values = _split_fields(dat, number, line, RATING_FIELDS)
        rows.append(
            [
                _parse_int(dat, number, field, value)
                for field, value in zip(RATING_FIELDS, values, strict=True)
            ]
        )
    return np.array(rows, dtype=np.int64).reshape(-1, len(RATING_FIELDS))


def _lookup(
    table: _Table, keys: np.ndarray, field: str, dat: DatText, table_name: str
) -> np.ndarray:
    """Row positions in ``table`` for ``keys``; error names the first unknown."""
    positions = pd.Index(table.ids).get_indexer(keys)
    unknown = np.flatnonzero(positions < 0)
    if unknown.size:
        first = int(unknown[0])
        raise DataPreparationError(
            f"{dat.origin} line {first + 1}: {field} {keys[first]} is not in "
            f"{table_name}; use users.dat, movies.dat and ratings.dat from the "
            "same ml-1m copy"
        )
    return positions


def prepare_generated(
    out_dir: Path,
    num_ratings: int,
    seed: int,
    keep_raw: bool = True,
    layout: str = "reference",
    sequence_length: int = DEFAULT_SEQUENCE_LENGTH,
) -> PreparedFiles:
    """Generated ml-1m files (in ``out_dir/raw``) turned into the parties' CSVs
    of ``layout``, through the same preparation as real data."""
    from splitrec.datasets.movielens.generate import generate_ml1m

    raw = generate_ml1m(out_dir / "raw", num_ratings=num_ratings, seed=seed)
    prepared = prepare_party_csvs(
        raw.ratings.parent,
        out_dir,
        layout=layout,
        sequence_length=sequence_length,
    )
    if not keep_raw:
        for path in (raw.users, raw.movies, raw.ratings):
            path.unlink()
    return prepared
