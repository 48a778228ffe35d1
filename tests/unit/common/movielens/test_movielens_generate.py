"""generate_ml1m: exact ml-1m format, domains, determinism and learnability."""

import re
from pathlib import Path

import numpy as np
import pytest

from splitrec.datasets.movielens import generate as gen
from splitrec.datasets.movielens.generate import GeneratedFiles, generate_ml1m

NUM_RATINGS = 50_000
SEED = 7
ZIP_RE = re.compile(r"\d{5}(-\d{4})?")
TITLE_RE = re.compile(r".+ \((19|20)\d\d\)")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    out = tmp_path_factory.mktemp("gen")
    return generate_ml1m(out, num_ratings=NUM_RATINGS, seed=SEED)


@pytest.fixture(scope="module")
def ratings(files: GeneratedFiles) -> np.ndarray:
    """(n, 4) int array: UserID, MovieID, Rating, Timestamp."""
    lines = files.ratings.read_text(encoding="ascii").splitlines()
    fields = [line.split("::") for line in lines]
    assert {len(f) for f in fields} == {4}
    return np.array(fields, dtype=np.int64)


def _records(path: Path, encoding: str, width: int) -> list[list[str]]:
    data = path.read_bytes()
    assert b"\r" not in data and data.endswith(b"\n")
    records = [line.split("::") for line in data.decode(encoding).splitlines()]
    assert {len(r) for r in records} == {width}
    return records


def test_paths(files):
    assert files.users.name == "users.dat"
    assert files.movies.name == "movies.dat"
    assert files.ratings.name == "ratings.dat"


def test_users_format_and_domains(files):
    users = _records(files.users, "ascii", 5)
    assert [int(u[0]) for u in users] == list(range(1, 6041))
    assert {u[1] for u in users} == {"F", "M"}
    assert {int(u[2]) for u in users} == {1, 18, 25, 35, 45, 50, 56}
    assert {int(u[3]) for u in users} == set(range(21))
    assert all(ZIP_RE.fullmatch(u[4]) for u in users)


def test_movies_format_and_domains(files):
    movies = _records(files.movies, "latin-1", 3)
    ids = [int(m[0]) for m in movies]
    assert len(ids) == 3883 == len(set(ids))
    assert ids == sorted(ids)
    assert ids[0] >= 1 and ids[-1] <= 3952
    titles = [m[1] for m in movies]
    assert len(set(titles)) == len(titles)
    assert all(TITLE_RE.fullmatch(t) for t in titles)
    assert sum("," in t for t in titles) > 50
    assert any(", The (" in t for t in titles)
    assert any(not t.isascii() for t in titles)
    for _, _, genres in movies:
        names = genres.split("|")
        assert names and len(set(names)) == len(names)
        assert set(names) <= set(gen.GENRES)


def test_movies_file_is_latin1(files):
    data = files.movies.read_bytes()
    assert "é".encode("latin-1") in data or "ü".encode("latin-1") in data
    assert data.decode("latin-1").encode("latin-1") == data
    assert max(data) < 256 and any(b > 127 for b in data)


def test_ratings_domains(files, ratings):
    assert len(ratings) == NUM_RATINGS
    users, movies, stars, stamps = ratings.T
    assert set(np.unique(stars)) == {1, 2, 3, 4, 5}
    assert stamps.min() >= 956703932 and stamps.max() <= 1046454590
    assert np.all(np.diff(users) >= 0), "ratings must be grouped by UserID"
    counts = np.bincount(users, minlength=6041)[1:]
    assert counts.min() >= 4, "every user needs a few ratings"
    movie_ids = {int(m[0]) for m in _records(files.movies, "latin-1", 3)}
    assert set(np.unique(movies).tolist()) <= movie_ids
    pairs = users * 10_000 + movies
    assert len(np.unique(pairs)) == len(pairs)


def test_label_balance_and_popularity_skew(ratings):
    positive = float(np.mean(ratings[:, 2] > 3))
    assert 0.55 <= positive <= 0.60
    per_movie = np.bincount(ratings[:, 1])
    per_movie = np.sort(per_movie[per_movie > 0])[::-1]
    top_share = per_movie[: len(per_movie) // 20].sum() / per_movie.sum()
    assert top_share > 0.2, "the top 5% of movies should draw many ratings"


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, tie_counts = np.unique(scores, return_inverse=True, return_counts=True)
    rank_sums = np.bincount(inverse, weights=ranks)
    ranks = (rank_sums / tie_counts)[inverse]
    pos = labels.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _target_encode(keys, labels, train, prior, smoothing=5.0):
    sums = np.bincount(keys[train], weights=labels[train], minlength=keys.max() + 1)
    counts = np.bincount(keys[train], minlength=keys.max() + 1)
    return ((sums + smoothing * prior) / (counts + smoothing))[keys]


def test_auc_helper():
    assert _auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert _auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5


def test_label_is_learnable_from_ids(ratings):
    labels = (ratings[:, 2] > 3).astype(float)
    train = np.random.default_rng(0).random(len(labels)) < 0.8
    prior = labels[train].mean()
    score = _target_encode(ratings[:, 0], labels, train, prior) + _target_encode(
        ratings[:, 1], labels, train, prior
    )
    auc = _auc(score[~train], labels[~train])
    assert auc > 0.7
    shuffled = np.random.default_rng(1).permutation(labels)
    assert abs(_auc(score[~train], shuffled[~train]) - 0.5) < 0.05


def test_same_seed_gives_identical_bytes(files, tmp_path):
    again = generate_ml1m(tmp_path, num_ratings=NUM_RATINGS, seed=SEED)
    for name in ("users", "movies", "ratings"):
        assert getattr(again, name).read_bytes() == getattr(files, name).read_bytes()


def test_other_seed_differs(files, tmp_path):
    other = generate_ml1m(tmp_path, num_ratings=NUM_RATINGS, seed=SEED + 1)
    assert other.ratings.read_bytes() != files.ratings.read_bytes()


@pytest.mark.parametrize("bad", [0, 12_079, 6040 * 3883 + 1])
def test_num_ratings_out_of_range(tmp_path, bad):
    with pytest.raises(ValueError, match="num_ratings"):
        generate_ml1m(tmp_path, num_ratings=bad)


@pytest.mark.parametrize("total", [12_080, 1_000_209, 5_000_000, 6040 * 3883])
def test_ratings_per_user_sum_and_caps(total):
    counts = gen._ratings_per_user(np.random.default_rng(0), total)
    assert counts.sum() == total
    assert counts.max() <= gen.NUM_MOVIES
    assert counts.min() >= min(20, max(2, total // (2 * gen.NUM_USERS)))


@pytest.mark.parametrize("k", [1, 5, 9, 10])
def test_smallest_sorted_matches_argsort(k):
    keys = np.random.default_rng(k).random((6, 10))
    expected = np.argsort(keys, axis=1)[:, :k]
    np.testing.assert_array_equal(gen._smallest_sorted(keys, k)[:, :k], expected)
