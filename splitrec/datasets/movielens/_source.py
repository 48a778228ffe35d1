"""Read the three ml-1m .dat files from a folder or a zip archive."""

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from splitrec.datasets.movielens.errors import DataPreparationError

DAT_FILES: tuple[str, ...] = ("users.dat", "movies.dat", "ratings.dat")
_ENCODING = "latin-1"
_HINT = (
    "pass a folder holding users.dat, movies.dat and ratings.dat, or the "
    "ml-1m.zip archive (or use --download)"
)


@dataclass(frozen=True)
class DatText:
    """Decoded text of one .dat file and where it came from (for messages)."""

    origin: str
    text: str


def read_dat_files(source: Path) -> dict[str, DatText]:
    """Return users/movies/ratings .dat texts from a folder or zip, decoded."""
    source = Path(source)
    if source.is_dir():
        return _read_folder(source)
    if source.is_file():
        return _read_zip(source)
    raise DataPreparationError(f"source {source} does not exist; {_HINT}")


def _read_folder(folder: Path) -> dict[str, DatText]:
    nested = folder / "ml-1m"
    if not (folder / "ratings.dat").exists() and (nested / "ratings.dat").exists():
        folder = nested
    missing = [name for name in DAT_FILES if not (folder / name).is_file()]
    if missing:
        raise DataPreparationError(
            f"folder {folder} lacks {', '.join(missing)}; {_HINT}"
        )
    texts: dict[str, DatText] = {}
    for name in DAT_FILES:
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataPreparationError(
                f"cannot read {path}: {exc.strerror or exc}"
            ) from exc
        texts[name] = DatText(str(path), data.decode(_ENCODING))
    return texts


def _read_zip(path: Path) -> dict[str, DatText]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = _find_members(path, archive.namelist())
            return {
                name: DatText(
                    f"{path}:{member}", archive.read(member).decode(_ENCODING)
                )
                for name, member in members.items()
            }
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataPreparationError(
            f"{path} is not a readable zip archive ({exc}); download it again "
            f"or {_HINT}"
        ) from exc
    except OSError as exc:
        raise DataPreparationError(f"cannot read {path}: {exc}") from exc


def _find_members(path: Path, names: list[str]) -> dict[str, str]:
    """Map each .dat file name to its member; all three in one shared folder."""
    folders: dict[PurePosixPath, dict[str, str]] = {}
    for name in names:
        member = PurePosixPath(name)
        if name.endswith("/") or member.parts[:1] == ("__MACOSX",):
            continue
        folders.setdefault(member.parent, {})[member.name] = name
    wanted = set(DAT_FILES)
    complete = [d for d, files in folders.items() if wanted <= files.keys()]
    if not complete:
        best = max((f.keys() & wanted for f in folders.values()), key=len, default=())
        missing = [name for name in DAT_FILES if name not in best]
        raise DataPreparationError(
            f"zip archive {path} lacks {', '.join(missing)} (all three .dat files "
            f"must sit in one folder); {_HINT}"
        )
    depth = min(len(d.parts) for d in complete)
    shallowest = sorted((d for d in complete if len(d.parts) == depth), key=str)
    if len(shallowest) > 1:
        raise DataPreparationError(
            f"zip archive {path} holds the .dat files in several folders "
            f"({', '.join(map(str, shallowest))}); keep one copy in the archive"
        )
    files = folders[shallowest[0]]
    return {name: files[name] for name in DAT_FILES}
