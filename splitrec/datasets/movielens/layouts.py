"""The party CSVs of each MovieLens layout: which party holds which columns, and
the lines of any range of rows.

Every layout has one row per kept rating, in ratings.dat order, with ID = the
rating's 0-based line index, in every file; values are joined by commas without
quoting (the preparation has already replaced commas in titles by ``_`` and
``|`` in genres by a space).
"""

import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.datasets.files import atomic_path, join_lines

# One string per file of a layout, for a range of rows: (start, stop) -> lines.
Lines = Callable[[int, int], tuple[str, ...]]

ALICE_CSV = "alice_ml1m.csv"
BOB_CSV = "bob_ml1m.csv"
ALICE_COLUMNS = ("ID", "UserID", "Gender", "Age", "Occupation", "Zip-code")
BOB_COLUMNS = ("ID", "MovieID", "Rating", "Title", "Genres", "Timestamp")
BST_FILES = ("alice_bst.csv", "bob_bst.csv")
BST_ALICE_COLUMNS = ("ID", "Gender", "Age", "Occupation")
BST_BOB_COLUMNS = ("ID", "UserID", "History", "MovieID", "Genres", "Rating")
THREE_PARTY_FILES = ("alice_3p.csv", "carol_3p.csv", "bob_3p.csv")
CAROL_COLUMNS = ("ID", "Genres", "Year")
THREE_PARTY_BOB_COLUMNS = ("ID", "UserID", "MovieID", "Rating")
_WRITE_CHUNK = 250_000
# A title's release year: "(YYYY)" at its end, as every ml-1m title has.
_YEAR = re.compile(r"\((\d{4})\)\s*$")


@dataclass(frozen=True)
class Joined:
    """The kept ratings and what users.dat and movies.dat say about them.

    ``ratings``: (n, 4) int64 UserID, MovieID, Rating, Timestamp. ``users``:
    each user's ``Gender,Age,Occupation,Zip-code``; ``movies``: each movie's
    ``Title,Genres`` (already converted, so exactly one comma); ``user_pos`` and
    ``movie_pos``: each rating's row in them.
    """

    ratings: np.ndarray
    users: np.ndarray
    user_pos: np.ndarray
    movies: np.ndarray
    movie_pos: np.ndarray

    def user_values(self, convert: Callable[[str], str] | None = None) -> np.ndarray:
        """Each rating's user row, through ``convert`` (once per user)."""
        return _spread(self.users, self.user_pos, convert)

    def movie_values(self, convert: Callable[[str], str] | None = None) -> np.ndarray:
        """Each rating's movie row, through ``convert`` (once per movie)."""
        return _spread(self.movies, self.movie_pos, convert)


@dataclass(frozen=True)
class PartyCsv:
    """One file of a layout: the party that holds it, its name and header."""

    party: str
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """A layout's files, in the order ``lines`` gives their text, and how to
    build that text from the joined ratings and a sequence length."""

    files: tuple[PartyCsv, ...]
    lines: Callable[[Joined, int], Lines]


def _spread(
    rows: np.ndarray, positions: np.ndarray, convert: Callable[[str], str] | None
) -> np.ndarray:
    if convert is not None:
        rows = np.array([convert(row) for row in rows.tolist()], dtype=object)
    return rows[positions]


def release_year(title: str) -> str:
    """The year a title ends with in parentheses (``Heat (1995)``: ``1995``);
    an empty string for a title without one."""
    match = _YEAR.search(title)
    return match.group(1) if match else ""


def histories(ratings: np.ndarray, length: int) -> np.ndarray:
    """For each rating (UserID, MovieID, Rating, Timestamp rows), the MovieIDs
    its user rated just before it: ``[n, length]``, oldest first, 0 where the
    user has fewer. Order: timestamp, then file order."""
    users, movies, stamps = ratings[:, 0], ratings[:, 1], ratings[:, 3]
    order = np.lexsort((np.arange(len(ratings)), stamps, users))
    ordered_users, ordered_movies = users[order], movies[order]
    history = np.zeros((len(ratings), length), dtype=np.int64)
    for back in range(1, min(length, len(ratings) - 1) + 1):
        same = ordered_users[back:] == ordered_users[:-back]
        column = np.zeros(len(ratings), dtype=np.int64)
        column[back:] = np.where(same, ordered_movies[:-back], 0)
        history[order, length - back] = column
    return history


def _columns(
    joined: Joined, start: int, stop: int
) -> tuple[range, list[int], list[int], list[int], list[int]]:
    """IDs, then UserID, MovieID, Rating and Timestamp of rows start..stop."""
    uid, mid, stars, stamps = (c.tolist() for c in joined.ratings[start:stop].T)
    return range(start, stop), uid, mid, stars, stamps


def _user_lines(joined: Joined) -> Callable[[range, list[int]], str]:
    """``ID,UserID,Gender,Age,Occupation,Zip-code`` lines of a range of IDs
    (with their UserIDs)."""
    users = joined.user_values()

    def lines(ids: range, uid: list[int]) -> str:
        return join_lines("{},{},{}", ids, uid, users[ids.start : ids.stop].tolist())

    return lines


def _reference(joined: Joined, _length: int) -> Lines:
    alice = _user_lines(joined)
    movies = joined.movie_values()

    def lines(start: int, stop: int) -> tuple[str, str]:
        ids, uid, mid, stars, stamps = _columns(joined, start, stop)
        catalogue = movies[start:stop].tolist()
        bob = join_lines("{},{},{},{},{}", ids, mid, stars, catalogue, stamps)
        return alice(ids, uid), bob

    return lines


def _bst(joined: Joined, length: int) -> Lines:
    history = histories(joined.ratings, length)
    demographics = joined.user_values(lambda row: row.rsplit(",", 1)[0])
    genres = joined.movie_values(lambda row: row.rsplit(",", 1)[1])

    def lines(start: int, stop: int) -> tuple[str, str]:
        ids, uid, mid, stars, _ = _columns(joined, start, stop)
        sequences = [" ".join(map(str, h)) for h in history[start:stop].tolist()]
        alice = join_lines("{},{}", ids, demographics[start:stop].tolist())
        bob = join_lines(
            "{},{},{},{},{},{}",
            ids,
            uid,
            sequences,
            mid,
            genres[start:stop].tolist(),
            stars,
        )
        return alice, bob

    return lines


def _genres_and_year(movie: str) -> str:
    title, genres = movie.split(",")
    return f"{genres},{release_year(title)}"


def _three_party(joined: Joined, _length: int) -> Lines:
    alice = _user_lines(joined)
    catalogue = joined.movie_values(_genres_and_year)

    def lines(start: int, stop: int) -> tuple[str, str, str]:
        ids, uid, mid, stars, _ = _columns(joined, start, stop)
        carol = join_lines("{},{}", ids, catalogue[start:stop].tolist())
        bob = join_lines("{},{},{},{}", ids, uid, mid, stars)
        return alice(ids, uid), carol, bob

    return lines


LAYOUTS: dict[str, Layout] = {
    "reference": Layout(
        (
            PartyCsv("alice", ALICE_CSV, ALICE_COLUMNS),
            PartyCsv("bob", BOB_CSV, BOB_COLUMNS),
        ),
        _reference,
    ),
    "bst": Layout(
        (
            PartyCsv("alice", BST_FILES[0], BST_ALICE_COLUMNS),
            PartyCsv("bob", BST_FILES[1], BST_BOB_COLUMNS),
        ),
        _bst,
    ),
    "three-party": Layout(
        (
            PartyCsv("alice", THREE_PARTY_FILES[0], ALICE_COLUMNS),
            PartyCsv("carol", THREE_PARTY_FILES[1], CAROL_COLUMNS),
            PartyCsv("bob", THREE_PARTY_FILES[2], THREE_PARTY_BOB_COLUMNS),
        ),
        _three_party,
    ),
}


def write_layout(
    layout: Layout, out_dir: Path, joined: Joined, sequence_length: int
) -> dict[str, Path]:
    """Writes the layout's CSVs into ``out_dir`` a chunk of rows at a time,
    each through a temporary file renamed only once every file is complete;
    returns each party's path."""
    paths = {f.party: out_dir / f.name for f in layout.files}
    lines = layout.lines(joined, sequence_length)
    rows = len(joined.ratings)
    with ExitStack() as stack:
        outputs = [
            stack.enter_context(stack.enter_context(atomic_path(path)).open("wb"))
            for path in paths.values()
        ]
        for output, csv in zip(outputs, layout.files, strict=True):
            output.write((",".join(csv.columns) + "\n").encode())
        for start in range(0, rows, _WRITE_CHUNK):
            texts = lines(start, min(start + _WRITE_CHUNK, rows))
            for output, text in zip(outputs, texts, strict=True):
                output.write(text.encode())
    return paths
