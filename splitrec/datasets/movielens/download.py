"""Download of the MovieLens-1M archive with SHA-256 verification."""

import http.client
import logging
import shutil
import urllib.request
from pathlib import Path

from splitrec.common.digests import file_sha256
from splitrec.datasets.files import atomic_path
from splitrec.datasets.movielens.errors import DataPreparationError

logger = logging.getLogger(__name__)

ML1M_URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ML1M_SHA256 = "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"
ML1M_ZIP_NAME = "ml-1m.zip"
_BLOCK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 digest of a file."""
    try:
        return file_sha256(path)
    except OSError as exc:
        raise DataPreparationError(
            f"cannot read {path} to check its SHA-256: {exc.strerror or exc}"
        ) from exc


def verify_sha256(path: Path, expected: str) -> None:
    """Raise DataPreparationError unless the file's SHA-256 equals ``expected``."""
    actual = sha256_of(path)
    if actual != expected.strip().lower():
        raise DataPreparationError(
            f"SHA-256 mismatch for {path}: expected {expected}, got {actual}; "
            "the file is corrupt or not the expected archive, delete it and "
            "download it again"
        )


def download_ml1m(
    dest: Path,
    url: str = ML1M_URL,
    sha256: str = ML1M_SHA256,
    timeout: float = 60.0,
) -> Path:
    """Fetch the ml-1m zip to ``dest`` and return its path.

    ``dest`` is either the zip path (ending in ``.zip``) or a folder, in which
    case the archive is ``dest/ml-1m.zip``. An existing archive with the right
    checksum is reused; a download with the wrong checksum is deleted.
    """
    target = _zip_target(Path(dest))
    if target.is_file():
        actual = sha256_of(target)
        if actual == sha256.strip().lower():
            logger.info("using cached %s (checksum ok)", target)
            return target
        logger.warning(
            "cached %s has SHA-256 %s, expected %s; downloading again",
            target,
            actual,
            sha256,
        )
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s to %s", url, target)
    with atomic_path(target) as tmp:
        _fetch(url, tmp, timeout)
        actual = sha256_of(tmp)
        if actual != sha256.strip().lower():
            raise DataPreparationError(
                f"SHA-256 mismatch for the download of {url}: expected {sha256}, "
                f"got {actual}; the file was deleted. Retry later, or download "
                "the archive by hand and pass it with --source"
            )
    return target


def _zip_target(dest: Path) -> Path:
    if dest.suffix.lower() == ".zip" and not dest.is_dir():
        return dest
    return dest / ML1M_ZIP_NAME


def _fetch(url: str, target: Path, timeout: float) -> None:
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as response,
            target.open("wb") as handle,
        ):
            shutil.copyfileobj(response, handle, _BLOCK)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DataPreparationError(
            f"could not download {url}: {exc}; check the network connection, "
            "or download the archive by hand and pass it with --source"
        ) from exc
