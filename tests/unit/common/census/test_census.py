"""UCI Adult: the original files' quirks, the party CSVs, the generator, the CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from splitrec.datasets.census.__main__ import main
from splitrec.datasets.census.adult import COLUMNS, EDUCATIONS
from splitrec.datasets.census.generate import generate_adult
from splitrec.datasets.census.prepare import prepare_census
from splitrec.datasets.files import DataPreparationError

ADULT_DATA = (
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, "
    "Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K\n"
    "50, ?, 83311, Bachelors, 13, Married-civ-spouse, ?, Husband, White, Male, "
    "0, 0, 13, ?, >50K\n"
    "\n"
)
ADULT_TEST = (
    "|1x3 Cross validator\n"
    "25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, "
    "Black, Male, 0, 0, 40, United-States, <=50K.\n"
    "38, Private, 89814, HS-grad, 9, Married-civ-spouse, Farming-fishing, Husband, "
    "White, Male, 0, 0, 50, United-States, >50K.\n"
)


def _write(folder, name: str, text: str):
    path = folder / name
    path.write_text(text, encoding="latin-1")
    return path


def test_both_files_become_the_two_party_csvs(tmp_path):
    data = _write(tmp_path, "adult.data", ADULT_DATA)
    test = _write(tmp_path, "adult.test", ADULT_TEST)

    files = prepare_census(data, tmp_path / "out", test)

    assert files.rows == 4
    assert files.alice.read_text() == (
        "ID,workclass,fnlwgt,education,education_num,relationship,race,"
        "capital_gain,capital_loss,hours_per_week,income,marital_status\n"
        "0,State-gov,77516,Bachelors,13,Not-in-family,White,2174,0,40,<=50K,"
        "Never-married\n"
        "1,?,83311,Bachelors,13,Husband,White,0,0,13,>50K,Married-civ-spouse\n"
        "2,Private,226802,11th,7,Own-child,Black,0,0,40,<=50K,Never-married\n"
        "3,Private,89814,HS-grad,9,Husband,White,0,0,50,>50K,Married-civ-spouse\n"
    )
    assert files.bob.read_text() == (
        "ID,age,sex,occupation,native_country\n"
        "0,39,Male,Adm-clerical,United-States\n"
        "1,50,Male,?,?\n"
        "2,25,Male,Machine-op-inspct,United-States\n"
        "3,38,Male,Farming-fishing,United-States\n"
    )


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("39, State-gov, 77516", "line 2: expected 15 comma-separated values, got 3"),
        (ADULT_DATA.splitlines()[0].replace("39", "3x9"), "line 2: age '3x9' is not"),
        (ADULT_DATA.splitlines()[0].replace("<=50K", "rich"), "line 2: income 'rich'"),
    ],
)
def test_a_malformed_line_is_named(tmp_path, line, needle):
    data = _write(tmp_path, "adult.data", ADULT_DATA.splitlines()[1] + "\n" + line)

    with pytest.raises(DataPreparationError, match=needle):
        prepare_census(data, tmp_path / "out")
    assert not (tmp_path / "out" / "alice_adult.csv").exists()


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(DataPreparationError, match="cannot read"):
        prepare_census(tmp_path / "nope.data", tmp_path / "out")
    empty = _write(tmp_path, "adult.data", "\n\n")
    with pytest.raises(DataPreparationError, match="holds no records"):
        prepare_census(empty, tmp_path / "out")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adult")
    return generate_adult(folder, rows=3000, test_rows=1000, seed=5)


def test_generated_files_have_the_uci_format(generated):
    data = generated.data.read_text(encoding="latin-1")
    test = generated.test.read_text(encoding="latin-1")

    assert data.endswith("K\n\n") and test.startswith("|1x3 Cross validator\n")
    lines = data.strip().split("\n")
    assert len(lines) == 3000 and len(test.strip().split("\n")) == 1001
    for line in lines[:50]:
        values = line.split(", ")
        assert len(values) == len(COLUMNS)
        assert values[-1] in ("<=50K", ">50K")
        assert int(values[4]) == EDUCATIONS.index(values[3]) + 1
    assert all(line.endswith(("<=50K.", ">50K.")) for line in test.split("\n")[1:-1])
    assert "?" in data


def test_generated_labels_are_balanced_and_learnable(generated, tmp_path):
    files = prepare_census(generated.data, tmp_path, generated.test)
    alice, bob = pd.read_csv(files.alice), pd.read_csv(files.bob)
    rich = (alice["income"] == ">50K").to_numpy()
    single = (alice["marital_status"] == "Never-married").to_numpy()

    assert 0.15 < rich.mean() < 0.35 and 0.2 < single.mean() < 0.45
    # Each label follows the columns it is planted on, across the two parties.
    assert (
        alice["education_num"][rich].mean() > alice["education_num"][~rich].mean() + 1
    )
    assert bob["age"][single].mean() < bob["age"][~single].mean() - 8


def test_same_seed_same_bytes(generated, tmp_path):
    again = generate_adult(tmp_path, rows=3000, test_rows=1000, seed=5)
    other = generate_adult(tmp_path / "other", rows=3000, test_rows=1000, seed=6)

    assert again.data.read_bytes() == generated.data.read_bytes()
    assert again.test.read_bytes() == generated.test.read_bytes()
    assert other.data.read_bytes() != generated.data.read_bytes()


def test_the_command_line_generates_and_prepares(tmp_path, capsys):
    assert (
        main(["generate", "--out", str(tmp_path), "--rows", "50", "--test-rows", "0"])
        == 0
    )
    data = tmp_path / "adult.data"
    assert main(["prepare", "--source", str(data), "--out", str(tmp_path / "csv")]) == 0
    assert "rows: 50" in capsys.readouterr().out
    assert (
        main(["prepare", "--source", str(tmp_path / "x"), "--out", str(tmp_path)]) == 2
    )
    assert "error: cannot read" in capsys.readouterr().err
    assert main(["generate", "--out", str(tmp_path), "--rows", "0"]) == 2
    assert "rows must be a whole number >= 1" in capsys.readouterr().err
