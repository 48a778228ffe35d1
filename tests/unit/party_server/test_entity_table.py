"""Entity tables for online scoring: read whole, checked, keyed."""

from __future__ import annotations

import pytest

from splitrec.common.errors import DataError
from splitrec.party_server.entity_table import file_signature, load_entity_table


def _table(tmp_path, text: str):
    path = tmp_path / "users.csv"
    path.write_text(text)
    return path


def test_rows_are_found_by_key_and_values_stay_text(tmp_path):
    path = _table(tmp_path, "UserID,Gender,Age\n7,F,01\n12,M,25\n")
    table = load_entity_table(path, "UserID", ["Gender", "Age"])
    assert len(table) == 2
    assert table.positions(["12", "7", "99"]).tolist() == [1, 0, -1]
    assert table.columns["Age"].tolist() == ["01", "25"]
    assert set(table.columns) == {"Gender", "Age"}
    assert table.signature == file_signature(path)
    again = load_entity_table(_table(tmp_path, path.read_text()), "UserID", ["Age"])
    assert again.digest == table.digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "UserID,Gender\n7,F\n8,M\n7,M\n",
            "line 4: key '7' of column 'UserID' is already on line 2",
        ),
        ("UserID,Gender\n7,F\n,M\n", "line 3: the key column 'UserID' is empty"),
        ("User,Gender\n7,F\n", "lacks the column(s) ['UserID']"),
        ("UserID\n7\n", "lacks the column(s) ['Gender']"),
    ],
)
def test_a_bad_table_is_refused_naming_file_and_line(tmp_path, text, message):
    path = _table(tmp_path, text)
    with pytest.raises(DataError) as caught:
        load_entity_table(path, "UserID", ["Gender"])
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_a_missing_file_says_which_setting_names_it(tmp_path):
    with pytest.raises(DataError) as caught:
        load_entity_table(tmp_path / "gone.csv", "UserID", [])
    assert "check serving.table.path" in str(caught.value)
    assert file_signature(tmp_path / "gone.csv") is None
