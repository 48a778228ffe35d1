"""prepare_party_csvs: exact CSV output, sources, sampling and clear errors."""

import zipfile
from pathlib import Path

import pytest

from splitrec.datasets.files import atomic_path
from splitrec.datasets.movielens.generate import generate_ml1m
from splitrec.datasets.movielens.prepare import (
    DataPreparationError,
    PreparedFiles,
    prepare_party_csvs,
)


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _assert_exact(files: PreparedFiles, expected: tuple[str, str], rows: int) -> None:
    assert _read(files.alice) == expected[0]
    assert _read(files.bob) == expected[1]
    assert files.rows == rows


def test_folder_gives_exact_csvs(dat_folder, tmp_path, expected_csvs):
    files = prepare_party_csvs(dat_folder, tmp_path / "out")
    assert files.alice == tmp_path / "out" / "alice_ml1m.csv"
    assert files.bob == tmp_path / "out" / "bob_ml1m.csv"
    _assert_exact(files, expected_csvs, rows=5)
    assert "é".encode() in files.bob.read_bytes()


@pytest.mark.parametrize("prefix", ["ml-1m/", "", "outer/ml-1m/"])
def test_zip_gives_exact_csvs(make_dat_zip, tmp_path, expected_csvs, prefix):
    archive = make_dat_zip(tmp_path / "ml-1m.zip", prefix=prefix)
    files = prepare_party_csvs(archive, tmp_path / "out")
    _assert_exact(files, expected_csvs, rows=5)


def test_folder_holding_ml1m_subfolder(dat_folder, tmp_path, expected_csvs):
    files = prepare_party_csvs(dat_folder.parent, tmp_path / "out")
    _assert_exact(files, expected_csvs, rows=5)


def test_num_sample_keeps_first_rows(dat_zip, tmp_path, expected_csvs):
    files = prepare_party_csvs(dat_zip, tmp_path / "out", num_sample=2)
    alice, bob = ("".join(t.splitlines(keepends=True)[:3]) for t in expected_csvs)
    _assert_exact(files, (alice, bob), rows=2)


def test_num_sample_above_row_count_keeps_all(dat_folder, tmp_path, expected_csvs):
    files = prepare_party_csvs(dat_folder, tmp_path / "out", num_sample=100)
    _assert_exact(files, expected_csvs, rows=5)


@pytest.mark.parametrize("bad", [0, -2])
def test_num_sample_must_be_minus_one_or_positive(dat_folder, tmp_path, bad):
    with pytest.raises(ValueError, match="num_sample"):
        prepare_party_csvs(dat_folder, tmp_path / "out", num_sample=bad)


def test_crlf_and_trailing_blank_lines_are_accepted(
    make_dat_folder, dat_texts, tmp_path, expected_csvs
):
    crlf = {
        name.removesuffix(".dat"): text.replace("\n", "\r\n")
        for name, text in dat_texts.items()
    }
    crlf["ratings"] += "\n\n"
    folder = make_dat_folder(tmp_path / "src", **crlf)
    _assert_exact(prepare_party_csvs(folder, tmp_path / "out"), expected_csvs, 5)


def test_matches_tutorial_style_reference_on_generated_data(tmp_path):
    source = tmp_path / "gen"
    generate_ml1m(source, num_ratings=12_080, seed=3)
    files = prepare_party_csvs(source, tmp_path / "out", num_sample=5000)
    alice, bob = _reference_csvs(source, num_sample=5000)
    assert _read(files.alice) == alice
    assert _read(files.bob) == bob


def _reference_csvs(source: Path, num_sample: int) -> tuple[str, str]:
    """Line-by-line re-implementation of the SecretFlow tutorial's loop."""

    def load(name: str) -> dict[str, list[str]]:
        text = (source / name).read_text(encoding="latin-1")
        return {f[0]: f[1:] for f in (x.split("::") for x in text.splitlines())}

    users, movies = load("users.dat"), load("movies.dat")
    alice = ["ID,UserID,Gender,Age,Occupation,Zip-code"]
    bob = ["ID,MovieID,Rating,Title,Genres,Timestamp"]
    lines = (source / "ratings.dat").read_text(encoding="latin-1").splitlines()
    for index, line in enumerate(lines[:num_sample]):
        uid, mid, rating, stamp = line.split("::")
        title, genres = movies[mid]
        alice.append(",".join([str(index), uid, *users[uid]]))
        title, genres = title.replace(",", "_"), genres.replace("|", " ")
        bob.append(",".join([str(index), mid, rating, title, genres, stamp]))
    return "\n".join(alice) + "\n", "\n".join(bob) + "\n"


def test_garbage_zip_is_reported(tmp_path):
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DataPreparationError, match="not a readable zip archive"):
        prepare_party_csvs(archive, tmp_path / "out")


def test_truncated_zip_is_reported(dat_zip, tmp_path):
    data = dat_zip.read_bytes()
    dat_zip.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataPreparationError, match=str(dat_zip)):
        prepare_party_csvs(dat_zip, tmp_path / "out")


def test_zip_missing_member_is_named(dat_texts, tmp_path):
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-1m/users.dat", dat_texts["users.dat"])
        zf.writestr("ml-1m/ratings.dat", dat_texts["ratings.dat"])
    with pytest.raises(DataPreparationError, match=r"lacks movies\.dat"):
        prepare_party_csvs(archive, tmp_path / "out")


def test_missing_source_is_reported(tmp_path):
    with pytest.raises(DataPreparationError, match="does not exist"):
        prepare_party_csvs(tmp_path / "nowhere", tmp_path / "out")


def test_folder_missing_file_is_named(dat_folder, tmp_path):
    (dat_folder / "ratings.dat").unlink()
    with pytest.raises(DataPreparationError, match=r"lacks ratings\.dat"):
        prepare_party_csvs(dat_folder, tmp_path / "out")


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (
            {"ratings": "1::11::5::978300760\n1::1::3\n"},
            r"ratings\.dat line 2: expected 4 fields .*got 3",
        ),
        ({"ratings": "1::11::5::1\n\n1::1::3::2\n"}, r"ratings\.dat line 2: empty"),
        ({"ratings": "1::11::5::1\n1::1::x::2\n"}, r"ratings\.dat line 2: Rating 'x'"),
        ({"ratings": "1::11::5::1\n1::1::7::2\n"}, r"ratings\.dat line 2: Rating 7"),
        (
            {"ratings": "1::11::5::1\n1::1::3::2\n9::1::3::2\n"},
            r"ratings\.dat line 3: UserID 9 is not in users\.dat",
        ),
        (
            {"ratings": "1::11::5::1\n1::12::3::2\n"},
            r"ratings\.dat line 2: MovieID 12 is not in movies\.dat",
        ),
        ({"users": "1::F::1::10::48067\n2::M::56\n"}, r"users\.dat line 2"),
        (
            {"users": "1::F::1::10::48067\n1::M::56::16::70072\n"},
            r"users\.dat line 2: duplicate UserID 1 \(first on line 1\)",
        ),
        ({"movies": "1::Toy Story (1995)::A,B\n"}, r"movies\.dat line 1: .*comma"),
    ],
)
def test_malformed_line_names_file_and_line(
    make_dat_folder, tmp_path, overrides, pattern
):
    folder = make_dat_folder(tmp_path / "src", **overrides)
    with pytest.raises(DataPreparationError, match=pattern):
        prepare_party_csvs(folder, tmp_path / "out")


def test_malformed_line_in_zip_names_member(make_dat_zip, tmp_path):
    archive = make_dat_zip(tmp_path / "ml-1m.zip", ratings="1::11::5\n")
    with pytest.raises(DataPreparationError, match=r"ml-1m/ratings\.dat line 1"):
        prepare_party_csvs(archive, tmp_path / "out")


def test_failure_leaves_no_files(make_dat_folder, tmp_path):
    folder = make_dat_folder(tmp_path / "src", ratings="1::11::5::1\n1::99::3::2\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataPreparationError):
        prepare_party_csvs(folder, out)
    assert list(out.iterdir()) == []


def test_atomic_path_removes_temp_file_on_error(tmp_path):
    target = tmp_path / "file.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# user 1 rates 1, then 25 and 3952 at one time (file order breaks the tie), then
# 11; user 2 rates 1 once.
BST_RATINGS = """\
1::11::5::300
1::1::3::100
1::25::4::200
2::1::2::50
1::3952::1::200
"""


def test_bst_layout_writes_each_users_previous_movies(make_dat_folder, tmp_path):
    source = make_dat_folder(tmp_path / "ml-1m", ratings=BST_RATINGS)

    files = prepare_party_csvs(
        source, tmp_path / "out", layout="bst", sequence_length=2
    )

    assert (files.alice.name, files.bob.name, files.rows) == (
        "alice_bst.csv",
        "bob_bst.csv",
        5,
    )
    assert _read(files.alice) == (
        "ID,Gender,Age,Occupation\n0,F,1,10\n1,F,1,10\n2,F,1,10\n3,M,56,16\n4,F,1,10\n"
    )
    assert _read(files.bob) == (
        "ID,UserID,History,MovieID,Genres,Rating\n"
        "0,1,25 3952,11,Comedy Drama Romance,5\n"
        "1,1,0 0,1,Animation Children's Comedy,3\n"
        "2,1,0 1,25,Comedy,4\n"
        "3,2,0 0,1,Animation Children's Comedy,2\n"
        "4,1,1 25,3952,Drama Thriller,1\n"
    )


def test_bst_histories_come_from_the_kept_rows_only(make_dat_folder, tmp_path):
    source = make_dat_folder(tmp_path / "ml-1m", ratings=BST_RATINGS)

    files = prepare_party_csvs(source, tmp_path / "out", num_sample=3, layout="bst")

    rows = _read(files.bob).splitlines()[1:]
    assert [row.split(",")[2] for row in rows] == ["0 0 1 25", "0 0 0 0", "0 0 0 1"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"layout": "wide"}, "unknown layout 'wide'"),
        ({"layout": "bst", "sequence_length": 0}, "sequence_length must be 1 to"),
    ],
)
def test_bad_layout_settings_are_refused(dat_folder, tmp_path, changes, needle):
    with pytest.raises(ValueError, match=needle):
        prepare_party_csvs(dat_folder, tmp_path / "out", **changes)
