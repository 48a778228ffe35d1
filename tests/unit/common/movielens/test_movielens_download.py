"""download_ml1m and verify_sha256 against local file:// URLs."""

import hashlib
from pathlib import Path

import pytest

from splitrec.datasets.movielens.prepare import (
    ML1M_SHA256,
    ML1M_URL,
    DataPreparationError,
    download_ml1m,
    prepare_party_csvs,
    verify_sha256,
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_constants():
    assert ML1M_URL == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert len(ML1M_SHA256) == 64


def test_verify_sha256_accepts_right_digest(dat_zip):
    verify_sha256(dat_zip, _sha256(dat_zip))
    verify_sha256(dat_zip, _sha256(dat_zip).upper())


def test_verify_sha256_names_both_digests(dat_zip):
    expected = "0" * 64
    with pytest.raises(DataPreparationError) as info:
        verify_sha256(dat_zip, expected)
    assert expected in str(info.value)
    assert _sha256(dat_zip) in str(info.value)


def test_verify_sha256_missing_file(tmp_path):
    with pytest.raises(DataPreparationError, match="cannot read"):
        verify_sha256(tmp_path / "absent.zip", "0" * 64)


def test_download_with_right_checksum(dat_zip, tmp_path, expected_csvs):
    cache = tmp_path / "cache"
    path = download_ml1m(cache, url=dat_zip.as_uri(), sha256=_sha256(dat_zip))
    assert path == cache / "ml-1m.zip"
    assert path.read_bytes() == dat_zip.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["ml-1m.zip"]
    files = prepare_party_csvs(path, tmp_path / "out")
    assert files.alice.read_text(encoding="utf-8") == expected_csvs[0]


def test_download_to_explicit_zip_path(dat_zip, tmp_path):
    target = tmp_path / "cache" / "movielens.zip"
    path = download_ml1m(target, url=dat_zip.as_uri(), sha256=_sha256(dat_zip))
    assert path == target
    assert target.read_bytes() == dat_zip.read_bytes()


def test_wrong_checksum_raises_and_leaves_no_file(dat_zip, tmp_path):
    cache = tmp_path / "cache"
    expected = "f" * 64
    with pytest.raises(DataPreparationError) as info:
        download_ml1m(cache, url=dat_zip.as_uri(), sha256=expected)
    message = str(info.value)
    assert expected in message
    assert _sha256(dat_zip) in message
    assert list(cache.iterdir()) == []


def test_cached_archive_is_reused_without_download(dat_zip, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-1m.zip").write_bytes(dat_zip.read_bytes())
    missing_url = (tmp_path / "not-there.zip").as_uri()
    path = download_ml1m(cache, url=missing_url, sha256=_sha256(dat_zip))
    assert path.read_bytes() == dat_zip.read_bytes()


def test_bad_cached_archive_is_replaced(dat_zip, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-1m.zip").write_bytes(b"stale partial download")
    path = download_ml1m(cache, url=dat_zip.as_uri(), sha256=_sha256(dat_zip))
    assert path.read_bytes() == dat_zip.read_bytes()


def test_unreachable_url_is_reported(tmp_path):
    cache = tmp_path / "cache"
    missing_url = (tmp_path / "not-there.zip").as_uri()
    with pytest.raises(DataPreparationError, match="could not download"):
        download_ml1m(cache, url=missing_url, sha256="0" * 64)
    assert list(cache.iterdir()) == []
