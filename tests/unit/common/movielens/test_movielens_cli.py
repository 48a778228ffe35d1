"""splitrec data movielens: generate and prepare subcommands, error exits."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from splitrec.datasets.movielens.__main__ import main

REPO_ROOT = Path(__file__).resolve().parents[4]


def test_generate_writes_dat_files(tmp_path, capsys):
    out = tmp_path / "gen"
    code = main(["generate", "--out", str(out), "--num-ratings", "12080"])
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("users.dat", "movies.dat", "ratings.dat"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    assert len((out / "ratings.dat").read_text().splitlines()) == 12080


def test_generate_seed_option(tmp_path):
    for name in ("a", "b"):
        argv = ["generate", "--out", str(tmp_path / name), "--seed", "5"]
        assert main([*argv, "--num-ratings", "12080"]) == 0
    a = (tmp_path / "a" / "ratings.dat").read_bytes()
    assert a == (tmp_path / "b" / "ratings.dat").read_bytes()


def test_prepare_from_source(dat_zip, tmp_path, capsys, expected_csvs):
    out = tmp_path / "out"
    code = main(["prepare", "--source", str(dat_zip), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out / "alice_ml1m.csv") in printed
    assert str(out / "bob_ml1m.csv") in printed
    assert "rows: 5" in printed
    assert (out / "bob_ml1m.csv").read_text(encoding="utf-8") == expected_csvs[1]


def test_prepare_num_sample(dat_folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["prepare", "--source", str(dat_folder), "--out", str(out)]
    assert main([*argv, "--num-sample", "3"]) == 0
    assert "rows: 3" in capsys.readouterr().out
    assert len((out / "alice_ml1m.csv").read_text().splitlines()) == 4


def test_prepare_with_download(dat_zip, tmp_path, capsys):
    digest = hashlib.sha256(dat_zip.read_bytes()).hexdigest()
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = ["prepare", "--download", "--cache", str(cache), "--out", str(out)]
    argv += ["--url", dat_zip.as_uri(), "--sha256", digest]
    assert main(argv) == 0
    assert (cache / "ml-1m.zip").is_file()
    assert "rows: 5" in capsys.readouterr().out


def test_prepare_error_is_one_line_exit_2(tmp_path, capsys):
    code = main(["prepare", "--source", str(tmp_path / "nope"), "--out", "x"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "does not exist" in err[0]


def test_generate_bad_count_exit_2(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--num-ratings", "5"]) == 2
    assert capsys.readouterr().err.startswith("error: num_ratings")


@pytest.mark.parametrize(
    "argv",
    [
        ["prepare", "--out", "x"],
        ["prepare", "--source", "a", "--download", "--out", "x"],
        ["prepare", "--source", "a", "--cache", "c", "--out", "x"],
        ["generate"],
    ],
)
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_module_entry_point_reports_errors_without_traceback(dat_zip, tmp_path):
    dat_zip.write_bytes(b"garbage")
    argv = ["prepare", "--source", str(dat_zip), "--out", str(tmp_path / "out")]
    result = subprocess.run(
        [sys.executable, "-m", "splitrec.datasets.movielens", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "not a readable zip archive" in result.stderr
