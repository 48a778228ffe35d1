"""A party's own rows: read once from its CSV, validated, and encoded for the model."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.config import PartyConfig
from common.errors import DataError
from common.features import EncodedFeatures, encode_features
from party_server.csv_layout import CsvLayout, scan_csv

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSlice:
    """Row IDs, encoded features and (label party only) labels, in file order."""

    ids: np.ndarray
    features: EncodedFeatures
    labels: np.ndarray | None
    id_digest: str

    @property
    def num_rows(self) -> int:
        return int(self.ids.size)


def _read_csv(config: PartyConfig) -> tuple[pd.DataFrame, CsvLayout]:
    path = config.data.path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path}: data file not found (set data.path in {config.source})"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the data file: {exc}") from None
    layout = scan_csv(raw, path)
    frame = pd.read_csv(
        io.BytesIO(raw),
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        index_col=False,
        encoding="utf-8",
    )
    if len(frame) != layout.row_lines.size:
        raise DataError(
            f"{path}: read {len(frame)} rows but the file has {layout.row_lines.size}; "
            "check for stray quote or control characters"
        )
    return frame, layout


def _check_columns(frame: pd.DataFrame, config: PartyConfig) -> None:
    path = config.data.path
    header = list(frame.columns)
    if config.data.columns and tuple(header) != config.data.columns:
        raise DataError(
            f"{path}:1: header {header} differs from data.columns "
            f"{list(config.data.columns)} in {config.source}; fix the file or the "
            "config"
        )
    needed = [config.data.id_column, *(f.column for f in config.features)]
    if config.label is not None:
        needed.append(config.label.column)
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: columns {missing} are configured in {config.source} but "
            "missing "
            f"from the header {header}"
        )
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no rows")


def _check_ids(ids: pd.Series, config: PartyConfig, layout: CsvLayout) -> None:
    duplicated = ids[ids.duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        lines = [layout.line(i) for i in duplicated.index[duplicated == first][:3]]
        raise DataError(
            f"{config.data.path}: ID {first!r} appears more than once (lines {lines}, "
            f"column {config.data.id_column!r}); row IDs must be unique"
        )
    empty = ids.index[ids == ""]
    if len(empty):
        raise DataError(
            f"{config.data.path}:{layout.line(empty[0])}: empty ID in column "
            f"{config.data.id_column!r}; every row needs an ID"
        )


def _labels(
    frame: pd.DataFrame, config: PartyConfig, layout: CsvLayout
) -> np.ndarray | None:
    if config.label is None:
        return None
    column = config.label.column
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.index[values.isna()]
    if len(bad):
        raise DataError(
            f"{config.data.path}:{layout.line(bad[0])}: column {column!r} holds "
            f"{frame[column].iloc[bad[0]]!r}, not a number; the label needs numbers"
        )
    return (values.to_numpy() > config.label.positive_above).astype(np.float32)


def id_digest(ids: np.ndarray) -> str:
    """SHA-256 over the ordered IDs: equal digests mean equal rows in equal order."""
    digest = hashlib.sha256()
    digest.update("\n".join(ids.tolist()).encode("utf-8"))
    return digest.hexdigest()


def load_data_slice(config: PartyConfig) -> DataSlice:
    """Reads the party's own file and encodes its features once."""
    frame, layout = _read_csv(config)
    _check_columns(frame, config)
    ids = frame[config.data.id_column]
    _check_ids(ids, config, layout)
    labels = _labels(frame, config, layout)
    features = encode_features(frame, config.features)
    id_array = ids.to_numpy(dtype=str)
    logger.info(
        "loaded %d rows and %d features from %s",
        len(frame),
        len(config.features),
        config.data.path,
    )
    return DataSlice(id_array, features, labels, id_digest(id_array))
