"""Synthetic MovieLens-1M data in the exact ml-1m file format.

Ratings come from planted factors (user and movie biases, demographic x genre
affinities, a low-rank user x movie term and noise), so the label
``Rating > 3`` is learnable from UserID, Gender, Age, Occupation, MovieID and
Genres. A sequential term makes what a user thinks of a movie depend on the
movie they rated just before it (in timestamp order): a contrast effect, the
better that previous movie, the lower the rating, so a user's recent history
predicts the label beyond what the user and the movie tell alone.
Output is byte-identical for a given seed (and NumPy version).
"""

import logging
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.datasets.files import atomic_path, join_lines, write_text_atomic
from splitrec.datasets.movielens._names import make_titles

logger = logging.getLogger(__name__)

NUM_USERS = 6040
NUM_MOVIES = 3883
MAX_MOVIE_ID = 3952
GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
    "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
AGES: tuple[int, ...] = (1, 18, 25, 35, 45, 50, 56)
TIMESTAMP_MIN = 956703932
TIMESTAMP_MAX = 1046454590
MAX_MIN_RATINGS_PER_USER = 20

# Shares observed in the real ml-1m data.
_AGE_WEIGHTS = np.array([222, 1103, 2096, 1193, 550, 496, 380], dtype=float)
_OCCUPATION_WEIGHTS = np.array(
    [711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195,
     129, 388, 142, 302, 144, 241, 502, 70, 72, 281],
    dtype=float,
)  # fmt: skip
_GENRE_WEIGHTS = np.array(
    [503, 283, 105, 251, 1200, 211, 127, 1603, 68,
     44, 343, 114, 106, 471, 276, 492, 143, 68],
    dtype=float,
)  # fmt: skip
_GENRES_PER_MOVIE = np.array([0.55, 0.33, 0.10, 0.015, 0.005])
_MALE_SHARE = 0.717
# Cumulative share of ratings <= 1, 2, 3, 4 stars; leaves ~57.5% above 3.
_STAR_CDF = np.array([0.056, 0.164, 0.425, 0.774])

_LATENT_DIM = 8
# Scale of the sequential term: the previous movie's quality, in standard units.
_CONTRAST = 1.0
_USER_CHUNK = 512
_PAIR_CHUNK = 500_000


@dataclass(frozen=True)
class GeneratedFiles:
    """Paths of the three generated ml-1m files."""

    users: Path
    movies: Path
    ratings: Path


@dataclass(frozen=True)
class _Users:
    gender: np.ndarray  # 0 = F, 1 = M
    age: np.ndarray  # index into AGES
    occupation: np.ndarray
    zip_codes: list[str]


@dataclass(frozen=True)
class _Movies:
    ids: np.ndarray
    titles: list[str]
    genres: np.ndarray  # bool, (NUM_MOVIES, len(GENRES))
    log_popularity: np.ndarray


def generate_ml1m(
    out_dir: Path, num_ratings: int = 1_000_209, seed: int = 1234
) -> GeneratedFiles:
    """Write users.dat, movies.dat and ratings.dat into ``out_dir``."""
    num_ratings = _check_num_ratings(num_ratings)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    users = _make_users(streams[0])
    movies = _make_movies(streams[1])
    counts = _ratings_per_user(streams[2], num_ratings)
    user_idx, movie_idx = _sample_pairs(streams[3], counts, movies.log_popularity)
    scores, movie_bias = _score_pairs(streams[4], users, movies, user_idx, movie_idx)
    timestamps = _timestamps(streams[5], counts)
    scores += _sequence_effect(movie_bias, user_idx, movie_idx, timestamps)
    stars = _to_stars(scores)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = GeneratedFiles(
        users=out_dir / "users.dat",
        movies=out_dir / "movies.dat",
        ratings=out_dir / "ratings.dat",
    )
    write_text_atomic(files.users, _users_text(users), "ascii")
    write_text_atomic(files.movies, _movies_text(movies), "latin-1")
    columns = (user_idx + 1, movies.ids[movie_idx], stars, timestamps)
    with atomic_path(files.ratings) as tmp, tmp.open("wb") as handle:
        for start in range(0, len(stars), _PAIR_CHUNK):
            rows = [c[start : start + _PAIR_CHUNK].tolist() for c in columns]
            handle.write(join_lines("{}::{}::{}::{}", *rows).encode("ascii"))
    logger.info(
        "generated %s ratings (%.1f%% above 3) in %s",
        len(stars),
        100.0 * float(np.mean(stars > 3)),
        out_dir,
    )
    return files


def _check_num_ratings(num_ratings: int) -> int:
    low, high = 2 * NUM_USERS, NUM_USERS * NUM_MOVIES
    if isinstance(num_ratings, bool):
        raise TypeError(f"num_ratings must be an int, got {num_ratings!r}")
    num_ratings = operator.index(num_ratings)
    if not low <= num_ratings <= high:
        raise ValueError(
            f"num_ratings must be between {low} (2 per user) and {high} "
            f"(every user rates every movie once), got {num_ratings}"
        )
    return num_ratings


def _make_users(rng: np.random.Generator) -> _Users:
    gender = (rng.random(NUM_USERS) < _MALE_SHARE).astype(np.int64)
    age = rng.choice(len(AGES), NUM_USERS, p=_AGE_WEIGHTS / _AGE_WEIGHTS.sum())
    occ_p = _OCCUPATION_WEIGHTS / _OCCUPATION_WEIGHTS.sum()
    occupation = rng.choice(len(occ_p), NUM_USERS, p=occ_p)
    zips = rng.integers(1000, 100000, NUM_USERS).tolist()
    plus_four = rng.integers(1000, 10000, NUM_USERS).tolist()
    extended = (rng.random(NUM_USERS) < 0.01).tolist()
    zip_codes = [
        f"{z:05d}-{p}" if ext else f"{z:05d}"
        for z, p, ext in zip(zips, plus_four, extended, strict=True)
    ]
    return _Users(gender, age, occupation, zip_codes)


def _make_movies(rng: np.random.Generator) -> _Movies:
    ids = np.sort(rng.choice(MAX_MOVIE_ID, NUM_MOVIES, replace=False)) + 1
    n_genres = rng.choice(len(_GENRES_PER_MOVIE), NUM_MOVIES, p=_GENRES_PER_MOVIE) + 1
    # Weighted sampling without replacement: smallest Exp(1)/weight keys win.
    keys = rng.standard_exponential((NUM_MOVIES, len(GENRES))) / _GENRE_WEIGHTS
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    genres = ranks < n_genres[:, None]
    log_popularity = rng.normal(0.0, 1.2, NUM_MOVIES)
    titles = make_titles(rng, NUM_MOVIES)
    return _Movies(ids, titles, genres, log_popularity)


def _ratings_per_user(rng: np.random.Generator, num_ratings: int) -> np.ndarray:
    """Heavy-tailed per-user counts summing to ``num_ratings``, capped per user."""
    floor = min(MAX_MIN_RATINGS_PER_USER, max(2, num_ratings // (2 * NUM_USERS)))
    weights = rng.lognormal(0.0, 1.0, NUM_USERS)
    extra = num_ratings - floor * NUM_USERS
    cap = NUM_MOVIES - floor
    # Find the scale s with sum(min(cap, s * w)) == extra by bisection.
    low, high = 0.0, extra / weights.min() + 1.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if np.minimum(cap, mid * weights).sum() < extra:
            low = mid
        else:
            high = mid
    share = np.minimum(cap, high * weights)
    base = np.minimum(np.floor(share).astype(np.int64), cap)
    missing = extra - int(base.sum())
    if missing > 0:
        fraction = np.where(base < cap, share - base, -1.0)
        base[np.argsort(-fraction, kind="stable")[:missing]] += 1
    elif missing < 0:
        base[np.argsort(-base, kind="stable")[:-missing]] -= 1
    return base + floor


def _sample_pairs(
    rng: np.random.Generator, counts: np.ndarray, log_popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct movies per user, drawn by popularity; grouped by user."""
    order = np.argsort(counts, kind="stable")
    users_out: list[np.ndarray] = []
    movies_out: list[np.ndarray] = []
    for start in range(0, NUM_USERS, _USER_CHUNK):
        chunk = order[start : start + _USER_CHUNK]
        chunk_counts = counts[chunk]
        keys = rng.standard_exponential((len(chunk), NUM_MOVIES), dtype=np.float32)
        keys *= np.exp(-log_popularity).astype(np.float32)
        top = _smallest_sorted(keys, int(chunk_counts.max()))
        take = np.arange(top.shape[1])[None, :] < chunk_counts[:, None]
        users_out.append(np.repeat(chunk, chunk_counts))
        movies_out.append(top[take])
    user_idx = np.concatenate(users_out)
    movie_idx = np.concatenate(movies_out)
    # Group by user; random order of movies within a user.
    regroup = np.lexsort((rng.random(len(user_idx)), user_idx))
    return user_idx[regroup], movie_idx[regroup]


def _smallest_sorted(keys: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k smallest keys in each row, ascending."""
    if k < keys.shape[1]:
        part = np.argpartition(keys, k - 1, axis=1)[:, :k]
        part_keys = np.take_along_axis(keys, part, axis=1)
        return np.take_along_axis(part, np.argsort(part_keys, axis=1), axis=1)
    return np.argsort(keys, axis=1)


def _score_pairs(
    rng: np.random.Generator,
    users: _Users,
    movies: _Movies,
    user_idx: np.ndarray,
    movie_idx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Latent preference score for each (user, movie) pair, and each movie's
    bias (its quality)."""
    n_genres = len(GENRES)
    user_bias = rng.normal(0.0, 0.75, NUM_USERS)
    quality = 0.35 * _standardize(movies.log_popularity) + rng.normal(0, 1, NUM_MOVIES)
    movie_bias = 0.75 * quality
    affinity = (
        rng.normal(0.0, 0.6, (2, n_genres))[users.gender]
        + rng.normal(0.0, 0.5, (len(AGES), n_genres))[users.age]
        + rng.normal(0.0, 0.4, (len(_OCCUPATION_WEIGHTS), n_genres))[users.occupation]
    )
    genre_mix = movies.genres / movies.genres.sum(axis=1, keepdims=True)
    scale = 0.6 / np.sqrt(_LATENT_DIM)
    user_side = np.hstack(
        [affinity, rng.normal(0.0, np.sqrt(scale), (NUM_USERS, _LATENT_DIM))]
    ).astype(np.float32)
    movie_side = np.hstack(
        [genre_mix, rng.normal(0.0, np.sqrt(scale), (NUM_MOVIES, _LATENT_DIM))]
    ).astype(np.float32)
    scores = np.empty(len(user_idx), dtype=np.float64)
    for start in range(0, len(user_idx), _PAIR_CHUNK):
        u = user_idx[start : start + _PAIR_CHUNK]
        m = movie_idx[start : start + _PAIR_CHUNK]
        interaction = np.einsum("ij,ij->i", user_side[u], movie_side[m])
        scores[start : start + len(u)] = user_bias[u] + movie_bias[m] + interaction
    return scores + rng.normal(0.0, 0.7, len(scores)), movie_bias


def _sequence_effect(
    movie_bias: np.ndarray,
    user_idx: np.ndarray,
    movie_idx: np.ndarray,
    timestamps: np.ndarray,
) -> np.ndarray:
    """The sequential term of each rating: minus the (standardized) quality of
    the movie the same user rated just before it (by timestamp, then file order:
    the order a history is read in); 0 for a user's first rating."""
    quality = _standardize(movie_bias)
    order = np.lexsort((np.arange(len(user_idx)), timestamps, user_idx))
    users, movies = user_idx[order], movie_idx[order]
    follows = users[1:] == users[:-1]
    effect = np.zeros(len(user_idx))
    effect[order[1:]] = np.where(follows, -_CONTRAST * quality[movies[:-1]], 0.0)
    return effect


def _standardize(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def _to_stars(scores: np.ndarray) -> np.ndarray:
    """Map scores to 1..5 stars using the real ml-1m star shares."""
    thresholds = np.quantile(scores, _STAR_CDF)
    return np.searchsorted(thresholds, scores, side="left").astype(np.int64) + 1


def _timestamps(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Per-user rating sessions inside the real ml-1m time range."""
    span = TIMESTAMP_MAX - TIMESTAMP_MIN
    start = TIMESTAMP_MIN + np.floor(span * rng.beta(0.6, 4.0, NUM_USERS))
    spread = np.exp(rng.normal(np.log(3 * 86400), 2.0, NUM_USERS))
    offsets = rng.standard_exponential(int(counts.sum())) * np.repeat(spread, counts)
    first = np.repeat(start, counts)
    room = TIMESTAMP_MAX - first + 1
    return (first + np.floor(offsets) % room).astype(np.int64)


def _users_text(users: _Users) -> str:
    genders = np.array(["F", "M"])[users.gender].tolist()
    ages = np.array(AGES)[users.age].tolist()
    return join_lines(
        "{}::{}::{}::{}::{}",
        range(1, NUM_USERS + 1),
        genders,
        ages,
        users.occupation.tolist(),
        users.zip_codes,
    )


def _movies_text(movies: _Movies) -> str:
    genre_names = [
        "|".join(g for g, on in zip(GENRES, row, strict=True) if on)
        for row in movies.genres.tolist()
    ]
    return join_lines("{}::{}::{}", movies.ids.tolist(), movies.titles, genre_names)
