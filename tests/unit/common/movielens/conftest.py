"""A tiny hand-written ml-1m dataset and the party CSVs it must turn into."""

import zipfile
from pathlib import Path

import pytest

USERS_DAT = """\
1::F::1::10::48067
2::M::56::16::70072
3::M::25::15::55117-1234
"""

MOVIES_DAT = """\
1::Toy Story (1995)::Animation|Children's|Comedy
11::American President, The (1995)::Comedy|Drama|Romance
25::Café au Lait (1993)::Comedy
3952::Contender, The (2000)::Drama|Thriller
"""

RATINGS_DAT = """\
1::11::5::978300760
1::1::3::978302109
2::25::4::978298413
3::3952::1::978220179
2::1::2::978299026
"""

EXPECTED_ALICE = """\
ID,UserID,Gender,Age,Occupation,Zip-code
0,1,F,1,10,48067
1,1,F,1,10,48067
2,2,M,56,16,70072
3,3,M,25,15,55117-1234
4,2,M,56,16,70072
"""

EXPECTED_BOB = """\
ID,MovieID,Rating,Title,Genres,Timestamp
0,11,5,American President_ The (1995),Comedy Drama Romance,978300760
1,1,3,Toy Story (1995),Animation Children's Comedy,978302109
2,25,4,Café au Lait (1993),Comedy,978298413
3,3952,1,Contender_ The (2000),Drama Thriller,978220179
4,1,2,Toy Story (1995),Animation Children's Comedy,978299026
"""

DAT_TEXTS = {
    "users.dat": USERS_DAT,
    "movies.dat": MOVIES_DAT,
    "ratings.dat": RATINGS_DAT,
}


def _write_dat_folder(folder: Path, **overrides: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DAT_TEXTS.items():
        text = overrides.get(name.removesuffix(".dat"), text)
        (folder / name).write_bytes(text.encode("latin-1"))
    return folder


def _write_dat_zip(path: Path, prefix: str = "ml-1m/", **overrides: str) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if prefix:
            archive.writestr(prefix, "")
        archive.writestr(f"{prefix}README", "SUMMARY\n")
        for name, text in DAT_TEXTS.items():
            text = overrides.get(name.removesuffix(".dat"), text)
            archive.writestr(f"{prefix}{name}", text.encode("latin-1"))
    return path


@pytest.fixture
def dat_texts() -> dict[str, str]:
    """The fixture's .dat texts by file name."""
    return dict(DAT_TEXTS)


@pytest.fixture
def expected_csvs() -> tuple[str, str]:
    """(alice, bob) CSV texts the fixture must produce."""
    return EXPECTED_ALICE, EXPECTED_BOB


@pytest.fixture
def make_dat_folder():
    """Factory: write the .dat files (latin-1) into a folder; keyword arguments
    users/movies/ratings replace a file's text."""
    return _write_dat_folder


@pytest.fixture
def make_dat_zip():
    """Factory: zip the .dat files plus a README under ``prefix``."""
    return _write_dat_zip


@pytest.fixture
def dat_folder(tmp_path: Path) -> Path:
    return _write_dat_folder(tmp_path / "ml-1m")


@pytest.fixture
def dat_zip(tmp_path: Path) -> Path:
    return _write_dat_zip(tmp_path / "ml-1m.zip")
