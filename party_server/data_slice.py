"""A party's own rows: read once from its table (CSV or Parquet, see
``table_source``), validated, and encoded for the model."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from splitrec.common.errors import DataError
from splitrec.config.features import FeatureConfig
from splitrec.config.party import LabelConfig, PartyConfig
from splitrec.engine import Inline, PartyEngine
from splitrec.models.features import (
    EncodedFeatures,
    encode_features,
    fit_vocabulary,
    numbers,
)
from splitrec.party_server.id_checks import first_repeat
from splitrec.party_server.row_store import (
    IdColumn,
    RowColumn,
    RowStore,
    RowStoreWriter,
    StoredFeatures,
    attach_cleanup,
    temporary_store_folder,
    zero_labels,
)
from splitrec.party_server.table_source import CHUNK_ROWS, TableSource, open_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSlice:
    """Row IDs, encoded features and (label party only) labels, in file order
    (or a job's order: ``view``), kept on disk in a row
    store (see ``row_store``) and read a batch at a time."""

    ids: IdColumn
    features: StoredFeatures
    labels: RowColumn | None
    # ``id_digest`` when known (a loaded table's); a view's is computed when
    # first asked for (secure aggregation binds its key to it).
    digest: str | None
    # SHA-256 over every column the party uses, row by row (its fingerprint).
    content_digest: str = ""
    # The party's features with ``from_data`` vocabularies fitted on its file:
    # how an exported part encodes raw values (``splitrec.models.raw_columns``).
    fitted: tuple[FeatureConfig, ...] = ()
    # Whom each row is about (``data.user_column``), when the config names it.
    users: IdColumn | None = None
    # The store the columns are read from (kept alive with the slice).
    store: RowStore | None = None

    def max_user_rows(self, rows: np.ndarray) -> int:
        """The most of ``rows`` that are about one user (0 without users)."""
        if self.users is None or not rows.size:
            return 0
        _, counts = np.unique(self.users.raw(rows), return_counts=True)
        return int(counts.max())

    @property
    def num_rows(self) -> int:
        return len(self.ids)

    @functools.cached_property
    def id_digest(self) -> str:
        """``id_digest`` of the slice's IDs, in its order."""
        return self.digest if self.digest is not None else id_digest(self.ids)

    def view(self, rows: np.ndarray) -> DataSlice:
        """These rows only, in that order, read from the same store (every
        column through one array of positions, 4 bytes a row)."""
        positions = self.ids.file_rows(rows)
        ids = self.ids.at(positions)
        return DataSlice(
            ids,
            self.features.at(positions),
            self.labels.at(positions) if self.labels is not None else None,
            None,
            self.content_digest,
            self.fitted,
            self.users.at(positions) if self.users is not None else None,
            self.store,
        )


def _open(
    config: PartyConfig, labels_optional: bool = False
) -> tuple[TableSource, PartyConfig]:
    """The party's table, and the config to read it by (without labels when
    they are optional and the table lacks a label column)."""
    table = open_source(config.data.path, config.source)
    label_columns = {x.column for x in config.labels}
    if labels_optional and not label_columns <= set(table.header):
        # Rows to score: neither the labels nor their columns are needed.
        columns = tuple(c for c in config.data.columns if c not in label_columns)
        data = config.data.model_copy(update={"columns": columns})
        config = config.model_copy(update={"labels": (), "data": data})
    return table, config


def _fitted_features(
    table: TableSource, config: PartyConfig
) -> tuple[FeatureConfig, ...]:
    """Features with ``from_data`` vocabularies fitted on the whole table (a
    first read of their columns only)."""
    from_data = [f for f in config.features if f.kind == "from_data"]
    if not from_data:
        return config.features
    seen: dict[str, set[str]] = {f.name: set() for f in from_data}
    for chunk in table.chunks(list(dict.fromkeys(f.column for f in from_data))):
        for feature in from_data:
            seen[feature.name].update(chunk[feature.column].unique().tolist())
    return tuple(fit_vocabulary(f, seen.get(f.name, ())) for f in config.features)


def _check_header(table: TableSource, config: PartyConfig) -> list[str]:
    """The columns the party needs, after checking the header against the config."""
    header = table.header
    if config.data.columns and tuple(header) != config.data.columns:
        raise DataError(
            f"{table.header_place}: header {header} differs from data.columns "
            f"{list(config.data.columns)} in {config.source}; fix the file or the "
            "config"
        )
    needed = [config.data.id_column, *(f.column for f in config.features)]
    needed += [label.column for label in config.labels]
    if config.data.user_column:
        needed.append(config.data.user_column)
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(
            f"{table.header_place}: columns {missing} are configured in "
            f"{config.source} but missing from the header {header}"
        )
    return list(dict.fromkeys(needed))


def _first_empty(ids: IdColumn) -> int | None:
    """The first row whose ID is empty (read a chunk at a time), if any."""
    for start, chunk in ids.raw_chunks(CHUNK_ROWS):
        found = np.flatnonzero(chunk == b"")
        if found.size:
            return start + int(found[0])
    return None


def _check_ids(
    ids: IdColumn, config: PartyConfig, table: TableSource, folder: Path
) -> None:
    """Refuses duplicate and empty IDs, naming their lines (repeats are looked
    for on disk, under ``folder``: see ``id_checks``)."""
    lines = first_repeat(ids, folder)
    if lines is not None:
        value = ids.raw(lines[:1])[0]
        raise DataError(
            f"{table.name}: ID {value.decode('utf-8')!r} appears more than once "
            f"({table.places(lines[:3].tolist())}, column "
            f"{config.data.id_column!r}); row IDs must be unique"
        )
    empty = _first_empty(ids)
    if empty is not None:
        raise DataError(
            f"{table.where(empty)}: empty ID in column "
            f"{config.data.id_column!r}; every row needs an ID"
        )


class RowError(Exception):
    """A row's cell that cannot be used: the row (of the whole table) and what
    is wrong with it; the reader puts the row's place in front."""

    def __init__(self, row: int, text: str) -> None:
        super().__init__(row, text)
        self.row = row
        self.text = text


def _label(frame: pd.DataFrame, label: LabelConfig) -> np.ndarray:
    """One label's 0/1 values by its rule."""
    column = label.column
    if label.equals is not None:
        return (frame[column].str.strip() == label.equals).to_numpy(dtype=np.float32)
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.index[values.isna()]
    if len(bad):
        raise RowError(
            int(bad[0]),
            f"column {column!r} holds {frame[column].loc[bad[0]]!r}, not a number; "
            "the label needs numbers",
        )
    return (values.to_numpy() > label.positive_above).astype(np.float32)


def _labels(frame: pd.DataFrame, labels: tuple[LabelConfig, ...]) -> np.ndarray | None:
    """The rows' labels: ``[rows]`` for one task, ``[rows, tasks]`` for several,
    None at a feature party."""
    found = [_label(frame, label) for label in labels]
    if not found:
        return None
    return found[0] if len(found) == 1 else np.stack(found, axis=1)


def _check_numbers(frame: pd.DataFrame, features: tuple[FeatureConfig, ...]) -> None:
    """Refuses a numeric feature's cell that is neither a finite number nor
    missing (empty, ``?``, NaN), naming its row and column."""
    for feature in features:
        if feature.kind != "numeric":
            continue
        _, _, bad = numbers(frame[feature.column])
        if bad.any():
            first = frame.index[int(np.flatnonzero(bad)[0])]
            raise RowError(
                int(first),
                f"column {feature.column!r} (numeric feature {feature.name!r}) "
                f"holds {frame[feature.column].loc[first]!r}, not a finite number; "
                "missing values are empty, '?' or NaN",
            )


class _ContentDigest:
    """SHA-256 over the used columns' cells, one running hash per column: a
    changed cell, row or column order changes it, and how the rows were cut
    into chunks (a CSV's blocks, a dataset's shards) does not."""

    def __init__(self, columns: list[str]) -> None:
        self._columns = {c: hashlib.sha256() for c in columns}

    def add(self, chunk: pd.DataFrame) -> None:
        for column, digest in self._columns.items():
            cells = chunk[column].tolist()
            if cells:
                digest.update(("\x1f".join(cells) + "\x1f").encode("utf-8"))

    def hexdigest(self) -> str:
        whole = hashlib.sha256()
        for column, digest in self._columns.items():
            whole.update(column.encode("utf-8") + b"\x1d" + digest.digest())
        return whole.hexdigest()


class IdDigest:
    """``id_digest`` of IDs given a chunk at a time (any cut gives the same)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._first = True

    def add(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        if not self._first:
            self._digest.update(b"\n")
        self._first = False
        self._digest.update("\n".join(ids.tolist()).encode("utf-8"))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def id_digest(ids: IdColumn | np.ndarray) -> str:
    """SHA-256 over the ordered IDs joined by newlines: equal digests mean equal
    rows in equal order."""
    digest = IdDigest()
    for start in range(0, len(ids), CHUNK_ROWS):
        digest.add(ids[slice(start, start + CHUNK_ROWS)])
    return digest.hexdigest()


def _ids_of(chunk: pd.DataFrame, column: str) -> np.ndarray:
    """A chunk's values of ``column`` (IDs or users), refused when one holds
    a NUL character (the store pads with it)."""
    values = chunk[column]
    bad = np.flatnonzero(values.str.contains("\x00", regex=False).to_numpy())
    if bad.size:
        raise RowError(
            int(chunk.index[bad[0]]),
            f"column {column!r} holds a NUL character; remove it from the data",
        )
    return values.to_numpy(dtype=str)


@dataclass(frozen=True)
class ChunkEncoder:
    """What encoding a chunk of the table takes (sent to an engine's workers
    once per table)."""

    features: tuple[FeatureConfig, ...]
    labels: tuple[LabelConfig, ...]
    id_column: str
    user_column: str | None


@dataclass(frozen=True)
class EncodedChunk:
    ids: np.ndarray
    features: EncodedFeatures
    labels: np.ndarray | None
    users: np.ndarray | None


def encode_chunk(encoder: ChunkEncoder, chunk: pd.DataFrame) -> EncodedChunk | RowError:
    """A chunk checked and encoded, or the first bad row found in it (as a
    value: it travels back from any engine alike)."""
    try:
        _check_numbers(chunk, encoder.features)
        users = encoder.user_column
        return EncodedChunk(
            _ids_of(chunk, encoder.id_column),
            encode_features(chunk, encoder.features),
            _labels(chunk, encoder.labels),
            _ids_of(chunk, users) if users else None,
        )
    except RowError as exc:
        return exc


def _counted(
    chunks: Iterator[pd.DataFrame], content: _ContentDigest
) -> Iterator[pd.DataFrame]:
    """The chunks, each added to the table's content digest as it is read."""
    for chunk in chunks:
        content.add(chunk)
        yield chunk


def load_data_slice(
    config: PartyConfig,
    labels_optional: bool = False,
    store: Path | None = None,
    engine: PartyEngine | None = None,
) -> DataSlice:
    """Reads the party's own table and encodes its features once, chunk by
    chunk, into a row store at ``store`` (by default a temporary folder that
    lives as long as the slice). With ``labels_optional`` a table without the
    label columns loads without labels. The encoding runs on the party's
    ``engine`` when the table is large enough for it, else here."""
    table, config = _open(config, labels_optional)
    columns = _check_header(table, config)
    features = _fitted_features(table, config)
    root = None
    if store is None:
        store, root = temporary_store_folder()
    writer = RowStoreWriter(store)
    content, digest = _ContentDigest(columns), IdDigest()
    encoder = ChunkEncoder(
        features, config.labels, config.data.id_column, config.data.user_column
    )
    rows = 0
    ray = engine.for_rows(table.num_rows) if engine is not None else None
    runner = ray or Inline()
    try:
        chunks = _counted(table.chunks(columns), content)
        for done in runner.map_ordered(encode_chunk, chunks, encoder):
            if isinstance(done, RowError):
                raise DataError(f"{table.where(done.row)}: {done.text}")
            digest.add(done.ids)
            shapes, packed = done.features.shapes, done.features.packed
            writer.add(done.ids, shapes, packed, done.labels, done.users)
            rows += len(done.ids)
        table.check_count(rows)
        stored = writer.finish()
    except BaseException:
        writer.abandon()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        raise
    if root is not None:
        attach_cleanup(stored, root)
    _check_ids(stored.ids, config, table, store.parent)
    logger.info(
        "loaded %d rows and %d features from %s into %s (encoded %s)",
        rows,
        len(features),
        table.name,
        store,
        "on the Ray engine" if ray is not None else "in the party process",
    )
    return DataSlice(
        stored.ids,
        stored.features,
        stored.labels,
        digest.hexdigest(),
        content.hexdigest(),
        features,
        stored.users,
        stored,
    )


def load_dataset(
    config: PartyConfig,
    key: str,
    features: tuple[FeatureConfig, ...],
    store: Path | None = None,
    engine: PartyEngine | None = None,
) -> DataSlice:
    """One of the party's further datasets (``datasets`` in its config), in the
    layout of its data file, encoded with ``features`` (an exported part's
    fitted features) into a row store at ``store``. Its label columns are
    optional: rows to score need none (their labels then read 0)."""
    path = config.datasets.get(key)
    if path is None:
        raise DataError(
            f"party {config.party}: no dataset {key!r} in {config.source} (it has "
            f"{sorted(config.datasets) or 'none'}); add it under 'datasets'"
        )
    scoring = config.model_copy(
        update={
            "data": config.data.model_copy(update={"path": path}),
            "features": features,
        }
    )
    data = load_data_slice(scoring, labels_optional=True, store=store, engine=engine)
    if data.labels is None and config.labels:
        tasks = len(config.labels)
        data = dataclasses.replace(data, labels=zero_labels(data.num_rows, tasks))
    return data
