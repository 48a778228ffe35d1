"""splitrec.party_server.data_slice: reading and checking a party's CSV."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from splitrec.common.errors import DataError
from splitrec.config.party import PartyConfig, load_party_config
from splitrec.party_server import csv_layout, table_source
from splitrec.party_server.data_slice import id_digest, load_data_slice, load_dataset

BOB_HEADER = "ID,MovieID,Rating,Genres"
BOB_ROWS = [
    "10,m1,5,Comedy Drama",
    "11,m2,3,Drama",
    "12,m1,4,",
    "13,m3,1,Action Western",
]


def _bob_config(folder: Path, columns: list[str] | None = None) -> PartyConfig:
    """A label party whose label is Rating > 3; data at ``folder/bob.csv``."""
    data = {"path": "bob.csv", "id_column": "ID"}
    if columns is not None:
        data["columns"] = columns
    config = {
        "party": "bob",
        "data": data,
        "features": [
            {"name": "MovieID", "type": "from_data"},
            {
                "name": "Genres",
                "type": "multi_hot",
                "vocabulary": ["Action", "Comedy", "Drama"],
            },
        ],
        "label": {"column": "Rating", "positive_above": 3},
        "model": {"embedding_dim": 2, "deep_units": [4]},
        "peers": [{"name": "alice", "address": "127.0.0.1:1"}],
        "tls": {"insecure": True},
    }
    path = folder / "bob.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return load_party_config(path)


def _feature_party(folder: Path, data: dict, features: list[dict]) -> PartyConfig:
    """A feature party (no label) named alice, its data at ``folder``."""
    config = {
        "party": "alice",
        "data": data,
        "features": features,
        "model": {"embedding_dim": 2, "deep_units": [4]},
        "peers": [{"name": "bob", "address": "127.0.0.1:1"}],
        "tls": {"insecure": True},
    }
    path = folder / "alice.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return load_party_config(path)


def _alice_config(folder: Path) -> PartyConfig:
    """A feature party (no label) with columns ID, UserID, Gender."""
    return _feature_party(
        folder,
        {"path": "alice.csv", "columns": ["ID", "UserID", "Gender"]},
        [
            {"name": "UserID", "type": "from_data"},
            {"name": "Gender", "type": "vocabulary", "vocabulary": ["F", "M"]},
        ],
    )


def _write_csv(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _data_error(config: PartyConfig) -> str:
    with pytest.raises(DataError) as caught:
        load_data_slice(config)
    return str(caught.value)


# --- happy path ---------------------------------------------------------------


def test_label_party_slice_has_ids_labels_digest_and_features(tmp_path):
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *BOB_ROWS)
    config = _bob_config(tmp_path, columns=BOB_HEADER.split(","))

    data = load_data_slice(config)

    assert data.num_rows == 4
    assert data.ids.tolist() == ["10", "11", "12", "13"]
    # Rating > 3: 5 yes, 3 no, 4 yes, 1 no.
    assert data.labels.dtype == np.float32
    np.testing.assert_array_equal(data.labels, [1.0, 0.0, 1.0, 0.0])
    assert data.id_digest == hashlib.sha256(b"10\n11\n12\n13").hexdigest()
    assert data.features.num_rows == 4
    # MovieID fitted from the data: vocabulary (m1, m2, m3).
    np.testing.assert_array_equal(data.features.arrays["MovieID"], [1, 2, 1, 3])
    # Genres columns: [unknown, Action, Comedy, Drama]; Western is unknown.
    np.testing.assert_array_equal(
        data.features.arrays["Genres"],
        [[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0]],
    )
    assert [s.name for s in data.features.shapes] == ["MovieID", "Genres"]


def test_feature_party_slice_has_no_labels(tmp_path):
    _write_csv(tmp_path / "alice.csv", "ID,UserID,Gender", "0,u7,M", "1,u8,F")
    config = _alice_config(tmp_path)

    data = load_data_slice(config)

    assert data.labels is None
    assert data.ids.tolist() == ["0", "1"]
    np.testing.assert_array_equal(data.features.arrays["Gender"], [2, 1])
    assert data.id_digest == hashlib.sha256(b"0\n1").hexdigest()


def test_ids_of_any_text_keep_their_value_and_digest(tmp_path):
    # Prepare: IDs with accents, a space inside and one of 40 characters: the
    # store pads them to the longest and gives them back as they were.
    ids = ["é1", "a b", "x" * 40, "ü"]
    _write_csv(
        tmp_path / "alice.csv",
        "ID,UserID,Gender",
        *(f"{i},u,M" for i in ids),
    )

    data = load_data_slice(_alice_config(tmp_path))

    assert data.ids.tolist() == ids
    assert data.id_digest == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    order = data.ids.order(np.arange(4))
    assert [ids[i] for i in order] == sorted(ids)


def test_an_id_holding_a_nul_character_is_refused_with_its_line(tmp_path):
    _write_csv(tmp_path / "alice.csv", "ID,UserID,Gender", "0,u,M", "1\x00,u,F")

    message = _data_error(_alice_config(tmp_path))

    assert message.startswith(f"{tmp_path / 'alice.csv'}:3: column 'ID' holds a NUL")


def test_values_are_read_as_text_without_changing_them(tmp_path):
    # Prepare: leading zeros, "NA" and "nan" must stay the strings they are.
    _write_csv(
        tmp_path / "alice.csv", "ID,UserID,Gender", "007,NA,F", "08,nan,M", "9,,F"
    )
    config = _alice_config(tmp_path)

    data = load_data_slice(config)

    assert data.ids.tolist() == ["007", "08", "9"]
    assert data.id_digest == hashlib.sha256(b"007\n08\n9").hexdigest()
    # UserID vocabulary fitted from ("NA", "nan", ""): sorted "", "NA", "nan".
    np.testing.assert_array_equal(data.features.arrays["UserID"], [2, 3, 1])


def test_threshold_compares_numbers_not_strings(tmp_path):
    # Prepare: "10" > 3 and "3.5" > 3 as numbers; "3.0" is not.
    _write_csv(
        tmp_path / "bob.csv", BOB_HEADER, "0,m,10,", "1,m,3.0,", "2,m,3.5,", "3,m,-1,"
    )
    config = _bob_config(tmp_path)

    data = load_data_slice(config)

    np.testing.assert_array_equal(data.labels, [1.0, 0.0, 1.0, 0.0])


def test_file_with_windows_line_ends_and_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "alice.csv").write_bytes(
        b"\xef\xbb\xbfID,UserID,Gender\r\n0,u1,F\r\n1,u2,M\r\n"
    )
    config = _alice_config(tmp_path)

    data = load_data_slice(config)

    assert data.ids.tolist() == ["0", "1"]
    np.testing.assert_array_equal(data.features.arrays["Gender"], [1, 2])


def test_id_digest_is_sha256_of_the_ids_joined_by_newlines():
    ids = np.array(["a", "b", "c"])

    assert id_digest(ids) == hashlib.sha256(b"a\nb\nc").hexdigest()
    assert id_digest(np.array(["b", "a", "c"])) != id_digest(ids)
    assert id_digest(np.array(["é"])) == hashlib.sha256("é".encode()).hexdigest()


# --- errors -------------------------------------------------------------------


def test_missing_file_names_the_file_and_the_config(tmp_path):
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message == (
        f"{tmp_path / 'bob.csv'}: data file not found "
        f"(set data.path in {tmp_path / 'bob.yaml'})"
    )


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "bob.csv").write_bytes(b"")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message == (
        f"{tmp_path / 'bob.csv'}: the file is empty; it needs a header line and rows"
    )


def test_header_only_file_is_refused(tmp_path):
    _write_csv(tmp_path / "bob.csv", BOB_HEADER)
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message == f"{tmp_path / 'bob.csv'}: the file has a header but no rows"


def test_header_differing_from_configured_columns_is_refused(tmp_path):
    _write_csv(tmp_path / "bob.csv", "ID,MovieID,Genres,Rating", "0,m,Drama,4")
    config = _bob_config(tmp_path, columns=BOB_HEADER.split(","))

    message = _data_error(config)

    assert message.startswith(
        f"{tmp_path / 'bob.csv'}:1: header ['ID', 'MovieID', 'Genres', 'Rating'] "
        "differs from data.columns ['ID', 'MovieID', 'Rating', 'Genres'] "
        f"in {tmp_path / 'bob.yaml'}"
    )


@pytest.mark.parametrize(
    ("header", "row", "missing"),
    [
        ("ID,MovieID,Rating", "0,m,4", ["Genres"]),
        ("ID,MovieID,Genres", "0,m,Drama", ["Rating"]),
        ("Key,MovieID,Rating,Genres", "0,m,4,Drama", ["ID"]),
        ("ID,Rating", "0,4", ["MovieID", "Genres"]),
    ],
    ids=["feature", "label", "id", "two"],
)
def test_configured_column_missing_from_the_header_is_refused(
    tmp_path, header, row, missing
):
    _write_csv(tmp_path / "bob.csv", header, row)
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message.startswith(
        f"{tmp_path / 'bob.csv'}:1: columns {missing} are configured in "
        f"{tmp_path / 'bob.yaml'} but missing from the header"
    )


def test_duplicate_ids_are_refused_with_their_lines(tmp_path):
    # Prepare: ID 11 is on lines 3 and 5 (the header is line 1).
    _write_csv(
        tmp_path / "bob.csv", BOB_HEADER, "10,m,4,", "11,m,4,", "12,m,4,", "11,m,2,"
    )
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message == (
        f"{tmp_path / 'bob.csv'}: ID '11' appears more than once (lines [3, 5], "
        "column 'ID'); row IDs must be unique"
    )


def test_empty_id_is_refused_with_its_line(tmp_path):
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, "10,m,4,", ",m,4,")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message == (
        f"{tmp_path / 'bob.csv'}:3: empty ID in column 'ID'; every row needs an ID"
    )


@pytest.mark.parametrize("value", ["four", "", "nan"])
def test_non_numeric_label_is_refused_with_its_line(tmp_path, value):
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, "10,m,4,", "11,m,2,", f"12,m,{value},")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message == (
        f"{tmp_path / 'bob.csv'}:4: column 'Rating' holds {value!r}, not a number; "
        "the label needs numbers"
    )


def test_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "bob.csv"
    path.write_bytes(b"ID,MovieID,Rating,Genres\n10,m,4,Com\xe9die\n")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert "is not UTF-8" in message and "re-encode the file as UTF-8" in message
    assert message.endswith("re-encode the file as UTF-8")


def test_row_with_too_many_fields_in_the_middle_is_refused(tmp_path):
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, "10,m,4,", "11,m,4,Drama,extra")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message.startswith(f"{tmp_path / 'bob.csv'}:3: 1 line(s) do not have")
    assert "line 3 has 5" in message


def test_non_utf8_error_points_at_the_bad_byte(tmp_path):
    # Prepare: the header line is 25 bytes and "10,m,4,Com" 10 more, so 0xE9 is
    # file byte 35, on line 2.
    path = tmp_path / "bob.csv"
    path.write_bytes(b"ID,MovieID,Rating,Genres\n10,m,4,Com\xe9die\n")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert f"{path}:2:" in message or "at byte 35" in message


def test_trailing_comma_on_every_row_does_not_shift_the_columns(tmp_path):
    _write_csv(tmp_path / "alice.csv", "ID,UserID,Gender", "0,u7,M,", "1,u8,F,")
    config = _alice_config(tmp_path)

    try:
        data = load_data_slice(config)
    except DataError:
        return
    assert data.ids.tolist() == ["0", "1"]
    np.testing.assert_array_equal(data.features.arrays["Gender"], [2, 1])


def test_row_with_too_few_fields_is_refused(tmp_path):
    _write_csv(tmp_path / "alice.csv", "ID,UserID,Gender", "0,u7,M", "1,u8")
    config = _alice_config(tmp_path)

    with pytest.raises(DataError):
        load_data_slice(config)


def test_line_numbers_count_blank_lines(tmp_path):
    # Prepare: the bad label is on line 4 of the file (line 3 is blank).
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, "10,m,4,", "", "11,m,x,")
    config = _bob_config(tmp_path)

    message = _data_error(config)

    assert message.startswith(f"{tmp_path / 'bob.csv'}:4:")


def test_the_file_is_checked_in_blocks_that_cut_lines_and_characters(
    tmp_path, monkeypatch
):
    # Prepare: blocks of 7 bytes cut lines and a two-byte character ("é"); a
    # blank line and, on line 9, a row without its label column.
    rows = ["10,mé,4,Drama", "", "11,m,2,", "12,mé,5,Comedy", "13,m,1,"]
    rows += ["14,m,3,", "15,m,4,", "16,m"]
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *rows)
    monkeypatch.setattr(csv_layout, "_BLOCK", 7)

    message = _data_error(_bob_config(tmp_path))

    assert message.startswith(f"{tmp_path / 'bob.csv'}:9: 1 line(s) do not have")
    assert "line 9 has 2" in message


def test_rows_after_blank_lines_are_named_by_their_lines(tmp_path, monkeypatch):
    # Prepare: blank lines 3, 5 and 6; the bad label on line 8 (row 3),
    # read in blocks of 5 bytes.
    rows = ["10,m,4,", "", "11,m,2,", "", "", "12,m,5,", "13,m,x,"]
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *rows)
    monkeypatch.setattr(csv_layout, "_BLOCK", 5)

    message = _data_error(_bob_config(tmp_path))

    assert message.startswith(f"{tmp_path / 'bob.csv'}:8:")


def test_a_byte_that_is_not_utf8_is_named_by_line_column_and_offset(
    tmp_path, monkeypatch
):
    # Prepare: 0xff as the 4th byte of line 3, read in blocks of 6 bytes.
    path = tmp_path / "bob.csv"
    path.write_bytes(f"{BOB_HEADER}\n10,m,4,\n11,\xffm,2,\n".encode("latin-1"))
    monkeypatch.setattr(csv_layout, "_BLOCK", 6)

    message = _data_error(_bob_config(tmp_path))

    offset = len(BOB_HEADER) + 1 + len("10,m,4,\n") + 3
    assert message.startswith(
        f"{path}:3:4: byte 0xff is not UTF-8 (file offset {offset})"
    )


def test_loading_in_small_chunks_gives_the_same_slice(tmp_path, monkeypatch):
    # Prepare: six rows, from_data vocabulary, multi-hot and a label.
    rows = [f"{i},m{i % 4},{1 + i % 5},Action Comedy" for i in range(6)]
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *rows)
    config = _bob_config(tmp_path)
    whole = load_data_slice(config)

    monkeypatch.setattr(table_source, "CHUNK_ROWS", 4)
    chunked = load_data_slice(config)

    np.testing.assert_array_equal(chunked.ids, whole.ids)
    np.testing.assert_array_equal(chunked.labels, whole.labels)
    np.testing.assert_array_equal(
        chunked.features.packed.indices, whole.features.packed.indices
    )
    np.testing.assert_array_equal(
        chunked.features.packed.dense, whole.features.packed.dense
    )
    assert chunked.id_digest == whole.id_digest == id_digest(whole.ids)
    monkeypatch.setattr(table_source, "CHUNK_ROWS", 2)
    assert load_data_slice(config).id_digest == whole.id_digest


def test_line_numbers_hold_across_chunks(tmp_path, monkeypatch):
    # Prepare: the bad label sits in the third chunk of two rows, on line 6.
    rows = ["0,m,4,", "1,m,4,", "2,m,4,", "3,m,4,", "4,m,x,"]
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *rows)
    monkeypatch.setattr(table_source, "CHUNK_ROWS", 2)

    message = _data_error(_bob_config(tmp_path))

    assert message.startswith(f"{tmp_path / 'bob.csv'}:6: column 'Rating' holds 'x'")


def test_empty_nan_and_unknown_cells_load_by_the_documented_rule(tmp_path):
    """Empty and 'NaN' cells are text like any other: a vocabulary feature puts
    them (and unknown values) in its out-of-vocabulary slot, a fitted feature
    gives them their own value; nothing is dropped."""
    config = _alice_config(tmp_path)
    _write_csv(
        tmp_path / "alice.csv",
        "ID,UserID,Gender",
        "1,7,F",
        "2,,M",
        "3,NaN,",
        "4,7,X",
        "5,nan,NaN",
    )
    data = load_data_slice(config)
    gender = data.features.arrays["Gender"]
    user = data.features.arrays["UserID"]
    assert data.ids.tolist() == ["1", "2", "3", "4", "5"]
    assert gender[0] != 0 and gender[1] != 0
    assert gender[2] == gender[3] == gender[4] == 0  # "", "X", "NaN": out of vocabulary
    assert user[0] == user[3]
    assert len({user[0], user[1], user[2], user[4]}) == 4  # "7", "", "NaN", "nan"


def _numeric_config(folder: Path) -> PartyConfig:
    """alice with one numeric feature, Hours, filled with -1 and flagged."""
    return _feature_party(
        folder,
        {"path": "alice.csv", "columns": ["ID", "Hours"]},
        [{"name": "Hours", "type": "numeric", "fill": -1, "indicator": True}],
    )


def test_numeric_features_load_as_float32_with_missing_values_filled(tmp_path):
    _write_csv(tmp_path / "alice.csv", "ID,Hours", "a,40", "b,?", "c,", "d,12.5")

    features = load_data_slice(_numeric_config(tmp_path)).features

    np.testing.assert_array_equal(
        features.arrays["Hours"], [[40, 0], [-1, 1], [-1, 1], [12.5, 0]]
    )
    assert features.packed.numeric.dtype == np.float32


@pytest.mark.parametrize("value", ["forty", "inf", "1,5"])
def test_a_cell_that_is_not_a_number_is_refused_with_its_line(tmp_path, value):
    cell = f'"{value}"' if "," in value else value
    _write_csv(tmp_path / "alice.csv", "ID,Hours", "a,40", "b,41", f"c,{cell}")

    message = _data_error(_numeric_config(tmp_path))

    assert message.startswith(f"{tmp_path / 'alice.csv'}:4: ")
    if "," not in value:
        assert message == (
            f"{tmp_path / 'alice.csv'}:4: column 'Hours' (numeric feature 'Hours') "
            f"holds {value!r}, not a finite number; missing values are empty, '?' "
            "or NaN"
        )


def test_a_text_label_is_one_where_the_value_equals_it(tmp_path):
    rows = ("10,m,>50K,", "11,m, >50K ,", "12,m,<=50K,")
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *rows)
    path = _bob_config(tmp_path).source
    config = yaml.safe_load(path.read_text())
    config["label"] = {"column": "Rating", "equals": ">50K"}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    labels = load_data_slice(load_party_config(path)).labels

    np.testing.assert_array_equal(labels, [1, 1, 0])


def test_a_dataset_to_score_loads_with_the_exported_features(tmp_path):
    _write_csv(tmp_path / "bob.csv", BOB_HEADER, *BOB_ROWS)
    config = _bob_config(tmp_path, ["ID", "MovieID", "Rating", "Genres"])
    fitted = load_data_slice(config).fitted
    (tmp_path / "later.csv").write_text(
        "ID,MovieID,Genres\n20,m3,Drama\n21,m9,Action\n", encoding="utf-8"
    )
    config = config.model_copy(update={"datasets": {"later": tmp_path / "later.csv"}})

    data = load_dataset(config, "later", fitted)

    # m3 keeps its index from the training file; m9 is out of its vocabulary.
    np.testing.assert_array_equal(data.features.arrays["MovieID"], [3, 0])
    np.testing.assert_array_equal(data.labels, [0.0, 0.0])
    with pytest.raises(DataError, match=r"no dataset 'other' in .* \['later'\]"):
        load_dataset(config, "other", fitted)


def _users_party(folder: Path, user_column: str) -> PartyConfig:
    (folder / "alice.csv").write_text(
        "ID,UserID,Gender\n1,u1,F\n2,u2,M\n3,u1,F\n4,u3,M\n5,u1,F\n6,u2,M\n"
    )
    data = {"path": "alice.csv", "id_column": "ID", "user_column": user_column}
    features = [{"name": "Gender", "type": "vocabulary", "vocabulary": ["F", "M"]}]
    return _feature_party(folder, data, features)


def test_the_user_column_counts_each_users_rows(tmp_path):
    data = load_data_slice(_users_party(tmp_path, "UserID"))
    assert data.users.tolist() == ["u1", "u2", "u1", "u3", "u1", "u2"]
    assert data.max_user_rows(np.arange(6)) == 3
    assert data.max_user_rows(np.array([1, 3, 5])) == 2
    assert data.max_user_rows(np.array([], np.int64)) == 0
    aligned = data.view(np.array([4, 1, 0]))
    assert aligned.users.tolist() == ["u1", "u2", "u1"]
    without = load_data_slice(
        _feature_party(
            tmp_path,
            {"path": "alice.csv", "id_column": "ID"},
            [{"name": "Gender", "type": "vocabulary", "vocabulary": ["F", "M"]}],
        )
    )
    assert without.users is None and without.max_user_rows(np.arange(6)) == 0


def test_a_user_column_missing_from_the_header_is_refused(tmp_path):
    message = _data_error(_users_party(tmp_path, "Customer"))
    assert message.startswith(
        f"{tmp_path / 'alice.csv'}:1: columns ['Customer'] are configured in "
        f"{tmp_path / 'alice.yaml'} but missing from the header"
    )
