"""Unit tests of splitrec.models.features: raw string columns to model inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from splitrec.config.features import FeatureConfig
from splitrec.models.features import (
    INDEX,
    MULTI_HOT,
    NO_TOKEN,
    NUMERIC,
    SEQUENCE,
    FeatureShape,
    encode_feature,
    encode_features,
    feature_shape,
    fit_vocabulary,
    pack,
)

GENRES = FeatureConfig(
    name="Genres",
    column="Genres",
    kind="multi_hot",
    vocabulary=("Action", "Comedy", "Drama"),
    separator="|",
)
GENDER = FeatureConfig(
    name="Gender", column="Gender", kind="vocabulary", vocabulary=("F", "M")
)


def _strings(*values: str) -> pd.Series:
    return pd.Series(list(values), dtype=str)


# --- hashed -------------------------------------------------------------------


@pytest.mark.parametrize("bins", [2, 10, 6040])
def test_hashed_feature_matches_keras_hashing_layer(bins):
    # Prepare: the seed tutorial hashes with keras.layers.Hashing(num_bins=...).
    import keras

    values = [str(i) for i in range(1, 201)] + ["", "F", "M", "Zip-02139", "ü"]
    feature = FeatureConfig(name="UserID", column="UserID", kind="hashed", bins=bins)

    # Execute
    encoded = encode_feature(feature, _strings(*values))
    expected = keras.layers.Hashing(num_bins=bins)(np.array(values, dtype=object))

    # Assert
    assert encoded.dtype == np.int32
    assert encoded.shape == (len(values),)
    np.testing.assert_array_equal(encoded, np.asarray(expected).reshape(-1))
    assert encoded.min() >= 0 and encoded.max() < bins


def test_hashed_feature_is_deterministic_and_equal_strings_share_a_bin():
    feature = FeatureConfig(name="UserID", column="UserID", kind="hashed", bins=97)

    first = encode_feature(feature, _strings("42", "7", "42"))
    second = encode_feature(feature, _strings("7", "42"))

    assert first[0] == first[2] == second[1]
    assert first[1] == second[0]


def test_hashed_feature_shape_is_an_index_over_every_bin():
    feature = FeatureConfig(name="UserID", column="UserID", kind="hashed", bins=6040)

    assert feature_shape(feature) == FeatureShape("UserID", INDEX, 6040)


# --- vocabulary ---------------------------------------------------------------


def test_vocabulary_lookup_is_one_based_with_zero_for_unknown_values():
    encoded = encode_feature(GENDER, _strings("M", "F", "X", "", "m", "F"))

    assert encoded.dtype == np.int32
    np.testing.assert_array_equal(encoded, [2, 1, 0, 0, 0, 1])


def test_vocabulary_of_numbers_matches_their_string_form_only():
    feature = FeatureConfig(
        name="Age", column="Age", kind="vocabulary", vocabulary=("1", "18", "25")
    )

    encoded = encode_feature(feature, _strings("25", "1", "18", "01", "18.0"))

    np.testing.assert_array_equal(encoded, [3, 1, 2, 0, 0])


def test_vocabulary_shape_adds_the_unknown_slot():
    assert feature_shape(GENDER) == FeatureShape("Gender", INDEX, 3)


# --- multi-hot ----------------------------------------------------------------


def test_multi_hot_sets_one_column_per_known_token():
    encoded = encode_feature(GENRES, _strings("Action|Drama", "Comedy", "Drama"))

    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(
        encoded,
        [
            [0, 1, 0, 1],
            [0, 0, 1, 0],
            [0, 0, 0, 1],
        ],
    )


def test_multi_hot_sends_unknown_tokens_to_column_zero():
    encoded = encode_feature(GENRES, _strings("Western", "Action|Horror|Noir"))

    np.testing.assert_array_equal(encoded, [[1, 0, 0, 0], [1, 1, 0, 0]])


def test_multi_hot_empty_string_is_all_zeros():
    encoded = encode_feature(GENRES, _strings("", "Comedy", ""))

    np.testing.assert_array_equal(encoded, [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])


def test_multi_hot_column_of_only_empty_strings_is_all_zeros():
    encoded = encode_feature(GENRES, _strings("", ""))

    np.testing.assert_array_equal(encoded, np.zeros((2, 4), dtype=np.float32))


def test_multi_hot_repeated_token_is_still_one():
    encoded = encode_feature(GENRES, _strings("Drama|Drama|Action"))

    np.testing.assert_array_equal(encoded, [[0, 1, 0, 1]])


def test_multi_hot_skips_empty_tokens_between_separators():
    encoded = encode_feature(GENRES, _strings("|Comedy||Drama|"))

    np.testing.assert_array_equal(encoded, [[0, 0, 1, 1]])


def test_multi_hot_default_separator_is_a_space():
    feature = FeatureConfig(
        name="Genres",
        column="Genres",
        kind="multi_hot",
        vocabulary=("Action", "Children's", "Sci-Fi"),
    )

    encoded = encode_feature(feature, _strings("Children's Sci-Fi", "Action|Sci-Fi"))

    # "Action|Sci-Fi" is one unknown token when the separator is a space.
    np.testing.assert_array_equal(encoded, [[0, 0, 1, 1], [1, 0, 0, 0]])


def test_multi_hot_rows_follow_position_not_the_series_index():
    column = pd.Series(["Drama", "Action"], index=[10, 3], dtype=str)

    encoded = encode_feature(GENRES, column)

    np.testing.assert_array_equal(encoded, [[0, 0, 0, 1], [0, 1, 0, 0]])


def test_multi_hot_shape_adds_the_unknown_column():
    assert feature_shape(GENRES) == FeatureShape("Genres", MULTI_HOT, 4)


# --- from_data ----------------------------------------------------------------


def test_from_data_fits_the_sorted_distinct_values_as_a_vocabulary():
    feature = FeatureConfig(name="Zip", column="Zip-code", kind="from_data")
    column = _strings("b", "10", "A", "2", "10", "b")

    fitted = fit_vocabulary(feature, column)

    # String order: digits before upper case before lower case; "10" < "2".
    assert fitted == FeatureConfig(
        name="Zip",
        column="Zip-code",
        kind="vocabulary",
        vocabulary=("10", "2", "A", "b"),
    )
    np.testing.assert_array_equal(encode_feature(fitted, column), [4, 1, 3, 2, 1, 4])
    assert feature_shape(fitted) == FeatureShape("Zip", INDEX, 5)


def test_fit_vocabulary_leaves_other_kinds_alone():
    assert fit_vocabulary(GENDER, _strings("Z")) is GENDER


def test_unfitted_from_data_feature_cannot_be_shaped_or_encoded():
    feature = FeatureConfig(name="Zip", column="Zip", kind="from_data")

    with pytest.raises(ValueError, match="'Zip': fit its vocabulary before use"):
        feature_shape(feature)
    with pytest.raises(ValueError, match="'Zip': fit its vocabulary before use"):
        encode_feature(feature, _strings("1"))


# --- encode_features and EncodedFeatures --------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ID": ["0", "1", "2", "3"],
            "Sex": ["F", "M", "M", "?"],
            "Genres": ["Action", "Comedy|Drama", "", "Drama"],
            "Zip-code": ["20", "10", "20", "30"],
        },
        dtype=str,
    )


def _features() -> tuple[FeatureConfig, ...]:
    return (
        FeatureConfig(
            name="Gender", column="Sex", kind="vocabulary", vocabulary=("F", "M")
        ),
        GENRES,
        FeatureConfig(name="Zip", column="Zip-code", kind="from_data"),
    )


def test_encode_features_gives_shapes_and_arrays_by_feature_name():
    encoded = encode_features(_frame(), _features())

    assert encoded.shapes == (
        FeatureShape("Gender", INDEX, 3),
        FeatureShape("Genres", MULTI_HOT, 4),
        FeatureShape("Zip", INDEX, 4),
    )
    assert list(encoded.arrays) == ["Gender", "Genres", "Zip"]
    np.testing.assert_array_equal(encoded.arrays["Gender"], [1, 2, 2, 0])
    np.testing.assert_array_equal(
        encoded.arrays["Genres"],
        [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1]],
    )
    np.testing.assert_array_equal(encoded.arrays["Zip"], [2, 1, 2, 3])
    assert encoded.num_rows == 4


def test_take_returns_the_given_rows_packed_in_shape_order():
    encoded = encode_features(_frame(), _features())

    taken = encoded.take(np.array([3, 0, 3]))

    # Index features (Gender, Zip) side by side; multi-hot (Genres) in ``dense``.
    np.testing.assert_array_equal(taken.indices, [[0, 3], [1, 2], [0, 3]])
    np.testing.assert_array_equal(
        taken.dense, [[0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1]]
    )
    assert taken.indices.dtype == np.int32 and taken.dense.dtype == np.float32


def test_arrays_are_views_of_the_packed_matrices():
    encoded = encode_features(_frame(), _features())

    views = encoded.arrays

    assert list(views) == ["Gender", "Genres", "Zip"]
    assert np.shares_memory(views["Zip"], encoded.packed.indices)
    assert np.shares_memory(views["Genres"], encoded.packed.dense)


def test_take_of_no_rows_keeps_the_trailing_dimensions():
    encoded = pack(
        (FeatureShape("G", MULTI_HOT, 3),), {"G": np.eye(3, dtype=np.float32)}, 3
    )

    taken = encoded.take(np.array([], dtype=np.int64))

    assert taken.dense.shape == (0, 3)
    assert taken.indices.shape == (0, 0)
    assert encoded.num_rows == 3


MOVIE = FeatureConfig("MovieID", "MovieID", "vocabulary", vocabulary=("5", "6", "7"))


def _history(max_length: int = 3, **changes) -> FeatureConfig:
    values = dict(kind="sequence", max_length=max_length, shares="MovieID")
    values.update(changes)
    return FeatureConfig("History", "History", **values)


def test_a_sequence_keeps_its_last_tokens_right_aligned_and_marks_no_token():
    frame = pd.DataFrame(
        {
            "MovieID": ["5", "6", "7", "5"],
            "History": ["5 6 7 6", "0 0 7", "", "9 5"],
        }
    )

    encoded = encode_features(frame, (MOVIE, _history()))

    assert encoded.shapes[1] == FeatureShape("History", SEQUENCE, 4, 3, "MovieID")
    # Shares MovieID's vocabulary: 5 -> 1, 6 -> 2, 7 -> 3, unknown 9 -> 0; the
    # padding token "0" and the empty value are no tokens.
    np.testing.assert_array_equal(
        encoded.arrays["History"],
        [[2, 3, 2], [NO_TOKEN, NO_TOKEN, 3], [NO_TOKEN] * 3, [NO_TOKEN, 0, 1]],
    )
    assert encoded.packed.indices.shape == (4, 4)
    np.testing.assert_array_equal(encoded.arrays["MovieID"], [1, 2, 3, 1])


def test_a_sequence_with_its_own_bins_hashes_like_a_hashed_feature():
    frame = pd.DataFrame({"Tags": ["a b", "c"], "Tag": ["b", "c"]})
    tag = FeatureConfig("Tag", "Tag", "hashed", bins=50)
    tags = FeatureConfig(
        "Tags", "Tags", "sequence", bins=50, max_length=2, separator=" "
    )

    encoded = encode_features(frame, (tag, tags))

    assert encoded.shapes[1].size == 50 and encoded.shapes[1].shares == ""
    assert encoded.arrays["Tags"][0, 1] == encoded.arrays["Tag"][0]
    assert encoded.arrays["Tags"][1, 1] == encoded.arrays["Tag"][1]
    assert encoded.arrays["Tags"][1, 0] == NO_TOKEN


def test_a_sequence_shares_a_from_data_vocabulary_fitted_on_the_target():
    frame = pd.DataFrame({"MovieID": ["20", "10"], "History": ["10 20 30", "20"]})
    movie = FeatureConfig("MovieID", "MovieID", "from_data")

    encoded = encode_features(frame, (movie, _history(max_length=2)))

    np.testing.assert_array_equal(encoded.arrays["History"], [[2, 0], [NO_TOKEN, 2]])


def test_a_number_is_kept_exactly_and_missing_values_are_filled():
    age = FeatureConfig("Age", "Age", "numeric", fill=-1.5, indicator=True)
    frame = pd.DataFrame({"Age": ["39", "", "?", "0.125", " 7 ", "NaN", "1e6"]})

    encoded = encode_features(frame, (age,))

    assert encoded.shapes == (FeatureShape("Age", NUMERIC, 2, scale="standard"),)
    np.testing.assert_array_equal(
        encoded.arrays["Age"],
        [[39, 0], [-1.5, 1], [-1.5, 1], [0.125, 0], [7, 0], [-1.5, 1], [1e6, 0]],
    )
    assert encoded.packed.numeric.dtype == np.float32
    assert encoded.packed.indices.shape == (7, 0)


def test_a_number_without_indicator_is_one_column_and_bad_cells_are_named():
    hours = FeatureConfig("Hours", "Hours", "numeric")
    frame = pd.DataFrame({"Hours": ["40", "forty", "inf"]})

    with pytest.raises(ValueError, match="feature 'Hours': row 1 holds 'forty'"):
        encode_features(frame, (hours,))
    encoded = encode_features(frame.iloc[:1], (hours,))
    assert encoded.arrays["Hours"].shape == (1, 1)


def test_numbers_sit_in_their_own_matrix_beside_the_others():
    frame = pd.DataFrame({"G": ["F", "M"], "A": ["1", "2"], "B": ["3", ""]})
    features = (
        FeatureConfig("A", "A", "numeric"),
        FeatureConfig("G", "G", "vocabulary", vocabulary=("F", "M")),
        FeatureConfig("B", "B", "numeric", indicator=True),
    )

    encoded = encode_features(frame, features)
    taken = encoded.take(np.array([1]))

    np.testing.assert_array_equal(encoded.packed.numeric, [[1, 3, 0], [2, 0, 1]])
    np.testing.assert_array_equal(taken.numeric, [[2, 0, 1]])
    np.testing.assert_array_equal(
        encoded.subset(np.array([1, 0])).arrays["B"], [[0, 1], [3, 0]]
    )
