"""The files of an exported part, their digests, and the checks made on load.

An export writes ``files.json`` last, just before the version's folder is
renamed into place: the SHA-256 of every other file of the part, by its path
inside the folder. The SHA-256 of ``files.json`` itself (the *list digest*)
is what the party returns to the coordinator, which records it in its
manifest: it covers the list, and through the list every file, ``model.json``
included.

``model.json`` names the export the part came from: the job, the version, the
epoch and the export id the coordinator chose for that export. The parts of
one version hold one export id; a part copied from another export, or from
another version's folder, does not fit.

Every load checks the part first (``check_part``): each listed file is there
and has its digest, no file was added, and ``model.json`` names the version
being loaded. A version exported before file lists were written has no
``files.json`` and is refused: it has to be exported again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from splitrec.common.digests import file_sha256
from splitrec.common.errors import ModelIntegrityError

FILE_LIST = "files.json"
MODEL_FILE = "model.json"
LIST_FORMAT = 1
# The fields of model.json that name the export a part came from.
IDENTITY = ("job", "version", "epoch", "export_id")


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` but the list, by its path inside it."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != FILE_LIST
    )


def folder_signature(folder: Path) -> tuple:
    """Each file's path, size and change time: equal while nothing in the
    folder was touched (cheap; no file is read)."""
    if not folder.is_dir():
        return ()
    found = []
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        found.append(
            (path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns)
        )
    return tuple(found)


def write_file_list(folder: Path) -> str:
    """Writes ``files.json`` for every file in ``folder``; returns its digest."""
    listed = {name: file_sha256(folder / name) for name in _files(folder)}
    text = json.dumps({"format": LIST_FORMAT, "files": listed}, indent=1) + "\n"
    (folder / FILE_LIST).write_text(text, encoding="utf-8")
    return file_sha256(folder / FILE_LIST)


def _again(folder: Path) -> str:
    return (
        f"the part in {folder} is not the one exported; export the version again "
        "under a new name (splitrec export --version NAME) at every "
        "party, or restore the exported files"
    )


def _recorded(folder: Path, where: str) -> dict[str, str]:
    path = folder / FILE_LIST
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        listed = found["files"]
        if not isinstance(listed, dict):
            raise TypeError("'files' is not a mapping")
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"{where} has no file list ({FILE_LIST}) in {folder}: it was exported "
            "before exports recorded their files and cannot be checked; export "
            "it again under a new version (splitrec export --version "
            "NAME)"
        ) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelIntegrityError(
            f"{where}: file {FILE_LIST} in {folder} cannot be read ({exc}); "
            + _again(folder)
        ) from None
    return {str(k): str(v) for k, v in listed.items()}


def check_files(folder: Path, where: str) -> str:
    """Checks every file of the part against its list; returns the list's
    digest. ``ModelIntegrityError`` names each file that changed, is missing
    or was added (``where`` says whose part of which version it is)."""
    recorded = _recorded(folder, where)
    present = set(_files(folder))
    problems = []
    for name, digest in sorted(recorded.items()):
        if name not in present:
            problems.append(f"file {name} is missing")
        elif file_sha256(folder / name) != digest:
            problems.append(f"file {name} differs from its export")
    problems += [
        f"file {name} was not exported" for name in sorted(present - set(recorded))
    ]
    if problems:
        raise ModelIntegrityError(f"{where}: {'; '.join(problems)}; {_again(folder)}")
    return file_sha256(folder / FILE_LIST)


def check_identity(
    described: Mapping, expected: Mapping[str, object], folder: Path, where: str
) -> None:
    """Refuses a ``model.json`` whose fields differ from ``expected`` (a part
    of another job, version, epoch or export than the one loaded)."""
    differ = [
        f"{key} {described.get(key)!r} (expected {value!r})"
        for key, value in expected.items()
        if described.get(key) != value
    ]
    if differ:
        raise ModelIntegrityError(
            f"{where}: file {MODEL_FILE} in {folder} names {', '.join(differ)}: "
            "the part comes from another export; " + _again(folder)
        )


def check_part(
    folder: Path, where: str, expected: Mapping[str, object]
) -> tuple[dict, str]:
    """A part's ``model.json`` once every file is checked and it names
    ``expected`` (a subset of ``IDENTITY`` and ``party``), and its list digest."""
    digest = check_files(folder, where)
    try:
        described = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(
            f"{where}: file {MODEL_FILE} in {folder} cannot be read: {exc}"
        ) from None
    check_identity(described, expected, folder, where)
    return described, digest
