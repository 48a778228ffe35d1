"""Where a party's rows come from: a CSV file, or Parquet (one file, or a folder
of shards: a dataset), on the local disk or at a URL.

A URL is opened by pyarrow's own file systems (``s3://``, ``gs://``,
``hdfs://``, ``file://``; S3 options such as ``endpoint_override`` go in its
query string) or, for any other scheme, by fsspec (``memory://``, ``abfs://``
with its package installed, ...). A file is Parquet when it starts with
Parquet's magic bytes, whatever its name; a folder is a dataset of the
``.parquet`` files below it, read in the order of their paths (files whose
names start with ``_`` or ``.``, such as ``_SUCCESS``, are skipped, as Spark and
pyarrow write them).

Every source gives the columns as text, chunk by chunk, with a global row
index, so that one loader validates and encodes CSV and Parquet alike (a
Parquet integer 25 reads as "25", a null as an empty cell) and names where a
bad row is: ``file.csv:LINE`` or ``shard.parquet (row N)``.
"""

from __future__ import annotations

import bisect
import csv
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd

from splitrec.common.errors import DataError
from splitrec.config.base import is_url
from splitrec.party_server.csv_layout import CsvLayout, scan_csv

# Rows parsed at a time: bounds the memory that raw strings take while loading.
CHUNK_ROWS = 100_000

_PARQUET_MAGIC = b"PAR1"


class TableSource(Protocol):
    """A party's table: its column names and its rows as text."""

    name: str
    header: list[str]
    # Where the column names are, for a message (a CSV's first line).
    header_place: str
    # Its rows, as its layout or metadata counts them before a read.
    num_rows: int

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """``columns`` as strings, ``CHUNK_ROWS`` rows at a time, indexed by
        the row's number in the whole table."""
        ...

    def where(self, row: int) -> str:
        """Where row ``row`` (0-based, of the whole table) is, for a message."""
        ...

    def places(self, rows: Sequence[int]) -> str:
        """Where several rows are, within the table (``lines [3, 5]``)."""
        ...

    def check_count(self, rows: int) -> None:
        """Refuses a read that found another number of rows than the source
        holds."""
        ...


@dataclass
class CsvSource:
    """A CSV file whose bytes were checked by ``scan_csv``; read from
    ``path``, a local file (a URL's copy in a temporary file, removed with the
    source)."""

    name: str
    path: Path
    layout: CsvLayout
    spool: object = None

    @property
    def header(self) -> list[str]:
        return self.layout.header

    @property
    def header_place(self) -> str:
        return f"{self.name}:1"

    @property
    def num_rows(self) -> int:
        return self.layout.rows

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        return pd.read_csv(
            self.path,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            index_col=False,
            encoding="utf-8",
            usecols=columns,
            chunksize=CHUNK_ROWS,
        )

    def where(self, row: int) -> str:
        return f"{self.name}:{self.layout.line(row)}"

    def places(self, rows: Sequence[int]) -> str:
        return f"lines {[self.layout.line(r) for r in rows]}"

    def check_count(self, rows: int) -> None:
        if rows != self.layout.rows:
            raise DataError(
                f"{self.name}: read {rows} rows but the file has "
                f"{self.layout.rows}; check for stray quote or control "
                "characters"
            )


def _csv(fs: object, path: str, name: str, local: bool) -> CsvSource:
    """A CSV file checked a block at a time; one at a URL is copied to a
    temporary file as it is read."""
    try:
        with fs.open_input_stream(path) as stream:
            if local:
                return CsvSource(name, Path(path), scan_csv(stream, Path(name)))
            # It lives as long as the source (removed when closed or collected).
            spool = tempfile.NamedTemporaryFile(prefix="splitrec-", suffix=".csv")  # noqa: SIM115
            try:
                layout = scan_csv(stream, Path(name), copy_to=spool)
                spool.flush()
            except BaseException:
                spool.close()
                raise
            return CsvSource(name, Path(spool.name), layout, spool)
    except OSError as exc:
        raise DataError(f"{name}: cannot read the data file: {exc}") from None


# Arrow types a column may have: read as their text.
def _readable(kind: object) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _readable(kind.value_type)
    return any(
        check(kind)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_boolean,
        )
    )


@dataclass
class ParquetSource:
    """Parquet shards of one schema, read in order as one table."""

    name: str
    shards: list[str]  # their names for messages, in reading order
    files: list[object]  # pyarrow.parquet.ParquetFile, one per shard
    header: list[str]

    @property
    def header_place(self) -> str:
        return self.shards[0]

    def __post_init__(self) -> None:
        counts = [f.metadata.num_rows for f in self.files]
        self._starts = list(np.cumsum([0, *counts[:-1]]).tolist())
        self.num_rows = int(sum(counts))

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.compute as pc

        shards = zip(self.shards, self.files, self._starts, strict=True)
        for shard, file, start in shards:
            kinds = {f.name: f.type for f in file.schema_arrow}
            for column in columns:
                if not _readable(kinds[column]):
                    raise DataError(
                        f"{shard}: column {column!r} has the Parquet type "
                        f"{kinds[column]}; a party's columns are text or numbers"
                    )
            offset = start
            for batch in file.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
                text = {}
                for column in columns:
                    values = batch.column(column)
                    if pa.types.is_dictionary(values.type):
                        values = values.cast(values.type.value_type)
                    values = pc.cast(values, pa.string()).fill_null("")
                    text[column] = values.to_numpy(zero_copy_only=False).astype(str)
                index = pd.RangeIndex(offset, offset + batch.num_rows)
                offset += batch.num_rows
                yield pd.DataFrame(text, index=index, columns=columns)

    def where(self, row: int) -> str:
        shard, number = self._place(row)
        return f"{shard} (row {number})"

    def places(self, rows: Sequence[int]) -> str:
        return ", ".join("{} row {}".format(*self._place(r)) for r in rows)

    def _place(self, row: int) -> tuple[str, int]:
        """The shard of a row of the table, and the row's number in it."""
        shard = bisect.bisect_right(self._starts, row) - 1
        return self.shards[shard], row - self._starts[shard] + 1

    def check_count(self, rows: int) -> None:
        if rows != self.num_rows:
            raise DataError(
                f"{self.name}: read {rows} rows but its shards' metadata says "
                f"{self.num_rows}; a shard changed while it was read"
            )


def _file_system(location: str) -> tuple[object, str]:
    """pyarrow's file system for a URL and the path within it."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(location)
    except (ValueError, OSError) as native:
        if "Unrecognized filesystem type" not in str(native):
            raise DataError(f"{location}: cannot open it: {native}") from None
    try:
        import fsspec
    except ImportError:  # pragma: no cover - a dependency of the project
        raise DataError(f"{location}: no file system for its scheme") from None
    try:
        fs, path = fsspec.core.url_to_fs(location)
    except (ValueError, ImportError, OSError) as exc:
        raise DataError(
            f"{location}: no file system opens this URL ({exc}); use a local path, "
            "s3://, gs://, hdfs://, file:// or a scheme whose fsspec package is "
            "installed"
        ) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def open_source(location: str | Path, source: Path) -> TableSource:
    """The table at ``location`` (a path or URL) that ``source``, the party's
    config file, names; ``DataError`` naming it when it cannot be read."""
    import pyarrow.fs as pafs

    text = str(location)
    local = True
    if text.lower().startswith("file://"):  # a local path, %-escaped
        fs, path = pafs.LocalFileSystem(), unquote(urlsplit(text).path)
    elif is_url(text):
        fs, path = _file_system(text)
        local = False
    else:
        fs, path = pafs.LocalFileSystem(), text
    name = str(location)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:
        raise DataError(f"{name}: cannot reach the data: {exc}") from None
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"{name}: data file not found (set data.path in {source})")
    if info.type == pafs.FileType.Directory:
        return _dataset(fs, path, name, source)
    if _read_bytes(fs, path, name, 4) == _PARQUET_MAGIC:
        return _parquet(fs, [path], [name], name)
    return _csv(fs, path, name, local)


def _read_bytes(fs: object, path: str, name: str, size: int) -> bytes:
    """The file's first ``size`` bytes."""
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read(size)
    except OSError as exc:
        raise DataError(f"{name}: cannot read the data file: {exc}") from None


def _dataset(fs: object, folder: str, name: str, source: Path) -> TableSource:
    import pyarrow.fs as pafs

    try:
        found = fs.get_file_info(pafs.FileSelector(folder, recursive=True))
    except OSError as exc:
        raise DataError(f"{name}: cannot list the folder: {exc}") from None

    def hidden(path: str) -> bool:
        return any(part[:1] in "_." for part in path[len(folder) :].split("/") if part)

    paths = sorted(
        f.path
        for f in found
        if f.type == pafs.FileType.File
        and f.path.endswith(".parquet")
        and not hidden(f.path)
    )
    if not paths:
        raise DataError(
            f"{name}: a folder with no .parquet files in it; data.path in {source} "
            "names a CSV file, a Parquet file or a folder of Parquet shards"
        )
    base = name.rstrip("/")
    names = [f"{base}/{p[len(folder) :].lstrip('/')}" for p in paths]
    return _parquet(fs, paths, names, name)


def _parquet(
    fs: object, paths: list[str], names: list[str], name: str
) -> ParquetSource:
    """The shards opened, each checked to be Parquet of the first one's columns."""
    import pyarrow.parquet as pq

    files = []
    header: list[str] | None = None
    for path, shard in zip(paths, names, strict=True):
        try:
            file = pq.ParquetFile(fs.open_input_file(path))
        except (OSError, ValueError) as exc:
            raise DataError(f"{shard}: not a readable Parquet file: {exc}") from None
        columns = list(file.schema_arrow.names)
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise DataError(
                f"{shard}: column {twice[0]!r} appears more than once; every "
                "column needs its own name"
            )
        if header is None:
            header = columns
        elif columns != header:
            raise DataError(
                f"{shard}: its columns {columns} differ from those of the first "
                f"shard {names[0]} ({header}); every shard needs the same columns"
            )
        files.append(file)
    assert header is not None
    if not sum(f.metadata.num_rows for f in files):
        raise DataError(f"{name}: the Parquet data has columns {header} but no rows")
    return ParquetSource(name, names, files, header)
