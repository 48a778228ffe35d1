"""The three-party layout: users at alice, the movie catalogue at carol, IDs and
the rating at bob, one row per rating in every file."""

import re
from pathlib import Path

import pytest

from splitrec.datasets.movielens.__main__ import main
from splitrec.datasets.movielens.generate import generate_ml1m
from splitrec.datasets.movielens.layouts import release_year
from splitrec.datasets.movielens.prepare import DataPreparationError, prepare_party_csvs

# Commas and parentheses inside titles, a latin-1 title, a title without a year.
MOVIES = """\
1::Toy Story (1995)::Animation|Children's|Comedy
7::Untitled (working title)::Documentary
11::American President, The (1995)::Comedy|Drama|Romance
25::City of Lost Children, The (Cité des enfants perdus, La) (1995)::Adventure|Sci-Fi
3952::Contender, The (2000)::Drama|Thriller
"""
RATINGS = """\
1::11::5::978300760
1::1::3::978302109
2::25::4::978298413
3::3952::1::978220179
2::7::2::978299026
"""
EXPECTED_CAROL = """\
ID,Genres,Year
0,Comedy Drama Romance,1995
1,Animation Children's Comedy,1995
2,Adventure Sci-Fi,1995
3,Drama Thriller,2000
4,Documentary,
"""
EXPECTED_BOB = """\
ID,UserID,MovieID,Rating
0,1,11,5
1,1,1,3
2,2,25,4
3,3,3952,1
4,2,7,2
"""


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    header, *lines = _read(path).splitlines()
    return header.split(","), [line.split(",") for line in lines]


def test_three_files_with_exact_columns(make_dat_folder, tmp_path, expected_csvs):
    source = make_dat_folder(tmp_path / "ml-1m", movies=MOVIES, ratings=RATINGS)

    files = prepare_party_csvs(source, tmp_path / "out", layout="three-party")

    assert (files.alice.name, files.carol.name, files.bob.name, files.rows) == (
        "alice_3p.csv",
        "carol_3p.csv",
        "bob_3p.csv",
        5,
    )
    assert _read(files.alice) == expected_csvs[0]  # the reference layout's alice
    assert _read(files.carol) == EXPECTED_CAROL
    assert _read(files.bob) == EXPECTED_BOB
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "alice_3p.csv",
        "bob_3p.csv",
        "carol_3p.csv",
    ]


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("Toy Story (1995)", "1995"),
        ("City of Lost Children, The (Cité des enfants perdus, La) (1995)", "1995"),
        ("Heat (1995) ", "1995"),
        ("Untitled (working title)", ""),
        ("1984", ""),
        ("Odd (19955)", ""),
        ("", ""),
    ],
)
def test_release_year(title, year):
    assert release_year(title) == year


def test_num_sample_keeps_the_first_rows_in_all_three(make_dat_folder, tmp_path):
    source = make_dat_folder(tmp_path / "ml-1m", movies=MOVIES, ratings=RATINGS)

    files = prepare_party_csvs(
        source, tmp_path / "out", num_sample=2, layout="three-party"
    )

    assert files.rows == 2
    for path, expected in ((files.carol, EXPECTED_CAROL), (files.bob, EXPECTED_BOB)):
        assert _read(path) == "".join(expected.splitlines(keepends=True)[:3])


def test_generated_data_matches_the_reference_layout(tmp_path):
    """Every file holds the same IDs in the same order; the columns are those of
    the reference layout, rearranged, and each Year is its title's."""
    source = tmp_path / "gen"
    generate_ml1m(source, num_ratings=12_080, seed=3)
    three = prepare_party_csvs(
        source, tmp_path / "3p", num_sample=3000, layout="three-party"
    )
    reference = prepare_party_csvs(source, tmp_path / "ref", num_sample=3000)

    alice_columns, alice = _rows(three.alice)
    carol_columns, carol = _rows(three.carol)
    bob_columns, bob = _rows(three.bob)
    _, ref_alice = _rows(reference.alice)
    _, ref_bob = _rows(reference.bob)  # ID,MovieID,Rating,Title,Genres,Timestamp

    assert carol_columns == ["ID", "Genres", "Year"]
    assert bob_columns == ["ID", "UserID", "MovieID", "Rating"]
    assert three.rows == reference.rows == len(alice) == len(carol) == len(bob) == 3000
    ids = [str(i) for i in range(3000)]
    assert [r[0] for r in alice] == [r[0] for r in carol] == [r[0] for r in bob] == ids
    assert alice_columns == ["ID", "UserID", "Gender", "Age", "Occupation", "Zip-code"]
    assert alice == ref_alice
    assert bob == [
        [i, a[1], b[1], b[2]] for i, a, b in zip(ids, alice, ref_bob, strict=True)
    ]
    assert [r[1] for r in carol] == [r[4] for r in ref_bob]
    years = [re.fullmatch(r".* \((\d{4})\)", r[3]).group(1) for r in ref_bob]
    assert [r[2] for r in carol] == years
    assert all(1919 <= int(year) <= 2000 for year in years)
    assert "|" in (source / "movies.dat").read_text(encoding="latin-1")
    assert all(len(r) == 3 and "|" not in r[1] for r in carol)


def test_failure_leaves_none_of_the_three_files(make_dat_folder, tmp_path):
    source = make_dat_folder(tmp_path / "ml-1m", movies=MOVIES, ratings="1::99::3::2\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataPreparationError, match="MovieID 99 is not in movies"):
        prepare_party_csvs(source, out, layout="three-party")
    assert list(out.iterdir()) == []


def test_command_line_prints_the_three_files(make_dat_folder, tmp_path, capsys):
    source = make_dat_folder(tmp_path / "ml-1m", movies=MOVIES, ratings=RATINGS)
    out = tmp_path / "out"

    code = main(
        ["prepare", "--source", str(source), "--out", str(out)]
        + ["--layout", "three-party"]
    )

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        f"alice: {out / 'alice_3p.csv'}",
        f"carol: {out / 'carol_3p.csv'}",
        f"bob: {out / 'bob_3p.csv'}",
        "rows: 5",
    ]
    assert _read(out / "carol_3p.csv") == EXPECTED_CAROL
