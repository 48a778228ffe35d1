"""Unit tests of splitrec.models.raw_columns: the graph encoding equals the job's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from splitrec.config.features import FeatureConfig
from splitrec.models.features import encode_feature, fit_vocabulary
from splitrec.models.raw_columns import RawColumns, used_columns

ROWS = {
    "UserID": ["1", "22", "", "ünï", "1", "9999999", "x y", "7"],
    "Gender": ["F", "M", "", "f", "M", "F", "X", "M"],
    "Genres": [
        "Action Comedy",
        "",
        "Drama  Action",
        "Horror",
        "Action Action",
        " Comedy ",
        "Drama Horror Comedy",
        "Comedy",
    ],
    "History": ["5 6 7 8", "0 0 6", "", "7", "9 5 5 5 6 7", "0", "6 x 0 5", "  5"],
    "Age": ["1", " 2.5 ", "", "?", "NaN", "na", "-3e2", "7"],
    "Zip": ["a", "b", "c", "a", "d", "", "b", "ö"],
}
MOVIE = FeatureConfig("MovieID", "MovieID", "vocabulary", vocabulary=("5", "6", "7"))
FEATURES = (
    FeatureConfig("UserID", "UserID", "hashed", bins=61),
    FeatureConfig("Gender", "Gender", "vocabulary", vocabulary=("F", "M")),
    FeatureConfig(
        "Genres", "Genres", "multi_hot", vocabulary=("Action", "Comedy", "Drama")
    ),
    FeatureConfig("History", "History", "sequence", bins=13, max_length=3),
    FeatureConfig(
        "Vocab", "History", "sequence", vocabulary=("5", "7"), max_length=4, padding=""
    ),
    FeatureConfig("Age", "Age", "numeric", fill=-1.5, indicator=True),
    FeatureConfig("Hours", "Age", "numeric"),
    FeatureConfig("Zip", "Zip", "from_data"),
)


def _fitted(frame: pd.DataFrame) -> tuple[FeatureConfig, ...]:
    return tuple(fit_vocabulary(f, frame[f.column].unique().tolist()) for f in FEATURES)


def _encoded(
    features: tuple[FeatureConfig, ...], frame: pd.DataFrame
) -> dict[str, np.ndarray]:
    raw = RawColumns(features)
    columns = {c: tf.constant(frame[c].tolist(), tf.string) for c in raw.columns}
    return {name: t.numpy() for name, t in raw(columns).items()}


def test_every_kind_encodes_as_the_job_does() -> None:
    frame = pd.DataFrame(ROWS, dtype=str)
    features = _fitted(frame)
    by_name = {f.name: f for f in features}
    found = _encoded(features, frame)
    for feature in features:
        expected = encode_feature(feature, frame[feature.column], by_name)
        np.testing.assert_array_equal(found[feature.name], expected, feature.name)
        assert found[feature.name].dtype == expected.dtype, feature.name


def test_a_sequence_shares_the_table_of_an_index_feature() -> None:
    frame = pd.DataFrame({"MovieID": ["5", "9"], "History": ["7 6 5 1", ""]})
    history = FeatureConfig(
        "History", "History", "sequence", shares="MovieID", max_length=3
    )
    found = _encoded((MOVIE, history), frame)
    np.testing.assert_array_equal(found["History"], [[2, 1, 0], [-1, -1, -1]])
    np.testing.assert_array_equal(found["MovieID"], [1, 0])


def test_an_empty_batch_gives_empty_inputs_of_the_right_width() -> None:
    frame = pd.DataFrame({c: pd.Series([], dtype=str) for c in ROWS})
    features = _fitted(pd.DataFrame(ROWS, dtype=str))
    found = _encoded(features, frame)
    assert found["Genres"].shape == (0, 4)
    assert found["History"].shape == (0, 3)
    assert found["Age"].shape == (0, 2)


def test_a_cell_that_is_no_number_fails_the_call() -> None:
    raw = RawColumns((FeatureConfig("Age", "Age", "numeric"),))
    for cell in ("abc", "inf"):
        with pytest.raises(tf.errors.InvalidArgumentError):
            raw({"Age": tf.constant(["1", cell])})


def test_used_columns_are_listed_once_in_feature_order() -> None:
    assert used_columns(FEATURES) == (
        "UserID",
        "Gender",
        "Genres",
        "History",
        "Age",
        "Zip",
    )
