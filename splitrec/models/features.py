"""Raw column values to model inputs, once per data set (never per batch).

Every feature becomes an index column (``int32 [N]``, looked up in an embedding
table), a multi-hot matrix (``float32 [N, size]``), a sequence (``int32 [N,
max_length]``: the last tokens, most recent last, encoded like an index feature;
-1 marks a position without a token) or a number (``float32 [N, 1]``, with a
second column of 1.0 where the value was missing when asked for). Index 0 is the
out-of-vocabulary slot for vocabulary features; hashed features use every bin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from splitrec.config.features import FeatureConfig

T = TypeVar("T")

INDEX = "index"
MULTI_HOT = "multi_hot"
SEQUENCE = "sequence"
NUMERIC = "numeric"
# Token strings a sequence's encoding holds at once (bounds its memory).
_TOKENS_AT_ONCE = 1_000_000
# Cells a numeric feature reads as missing (besides NaN).
MISSING = ("", "?")
# A sequence position without a token.
NO_TOKEN = -1


@dataclass(frozen=True)
class FeatureShape:
    """What the model needs to know about one encoded feature: its encoding,
    its table size and, for a sequence, its length and the index feature whose
    embedding table it shares (if any)."""

    name: str
    encoding: str
    size: int
    length: int = 0
    shares: str = ""
    # A numeric feature's scaling (see ``FeatureConfig.scale``).
    scale: str = ""

    @property
    def index_columns(self) -> int:
        """Its columns in the packed index matrix."""
        return {INDEX: 1, SEQUENCE: self.length}.get(self.encoding, 0)

    @property
    def dense_columns(self) -> int:
        """Its columns in the packed multi-hot matrix."""
        return self.size if self.encoding == MULTI_HOT else 0

    @property
    def numeric_columns(self) -> int:
        """Its columns in the packed numeric matrix."""
        return self.size if self.encoding == NUMERIC else 0


def _hash_bins(values: pd.Series, bins: int) -> np.ndarray:
    import tensorflow as tf

    hashed = tf.strings.to_hash_bucket_fast(values.to_numpy(dtype=object), bins)
    return hashed.numpy().astype(np.int32)


def _lookup(values: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Position in the vocabulary plus one; 0 for values outside it."""
    positions = pd.Index(vocabulary).get_indexer(values.to_numpy(dtype=object))
    return (positions + 1).astype(np.int32)


def _multi_hot(
    values: pd.Series, vocabulary: tuple[str, ...], separator: str
) -> np.ndarray:
    tokens = values.reset_index(drop=True).str.split(separator, regex=False).explode()
    tokens = tokens[tokens.notna() & (tokens != "")]
    columns = _lookup(tokens, vocabulary).astype(np.int64)
    matrix = np.zeros((len(values), len(vocabulary) + 1), dtype=np.float32)
    matrix[tokens.index.to_numpy(), columns] = 1.0
    return matrix


def _sequence(
    values: pd.Series, feature: FeatureConfig, tokens: FeatureConfig
) -> np.ndarray:
    """The last ``max_length`` tokens of each value, encoded like ``tokens``,
    right-aligned; ``NO_TOKEN`` before them. Rows are split a slice at a time,
    so that at most about ``_TOKENS_AT_ONCE`` token strings exist at once."""
    values = values.reset_index(drop=True)
    matrix = np.full((len(values), feature.max_length), NO_TOKEN, dtype=np.int32)
    step = max(1, _TOKENS_AT_ONCE // feature.max_length)
    for start in range(0, len(values), step):
        part = values.iloc[start : start + step].reset_index(drop=True)
        matrix[start : start + len(part)] = _last_tokens(part, feature, tokens)
    return matrix


def _last_tokens(
    values: pd.Series, feature: FeatureConfig, tokens: FeatureConfig
) -> np.ndarray:
    length = feature.max_length
    exploded = values.str.split(feature.separator, regex=False).explode()
    kept = exploded.notna() & (exploded != "") & (exploded != feature.padding)
    exploded = exploded[kept]
    rows = exploded.index.to_numpy()
    # Position from the end of the row: 0 for its last token.
    from_end = (
        exploded.groupby(level=0).cumcount(ascending=False).to_numpy()
        if len(exploded)
        else np.zeros(0, np.int64)
    )
    keep = from_end < length
    matrix = np.full((len(values), length), NO_TOKEN, dtype=np.int32)
    if keep.any():
        codes = encode_feature(tokens, exploded[keep].reset_index(drop=True))
        matrix[rows[keep], length - 1 - from_end[keep]] = codes
    return matrix


def numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column's numbers (float64), where they are missing (empty, ``?``,
    NaN) and where a cell is neither a finite number nor missing (the
    caller's error, by position)."""
    text = values.str.strip()
    parsed = pd.to_numeric(text.where(~text.isin(MISSING)), errors="coerce")
    numbers = parsed.to_numpy(dtype=np.float64)
    missing = text.isin(MISSING).to_numpy() | (
        text.str.lower().isin(("nan", "na")).to_numpy()
    )
    bad = ~missing & ~np.isfinite(numbers)
    return numbers, missing, bad


def _numeric(values: pd.Series, feature: FeatureConfig) -> np.ndarray:
    """``[N, 1]`` of numbers, missing ones filled; with ``indicator`` a second
    column of 1.0 where they were missing. Raises ``ValueError`` naming the
    first cell that is not a number (by position)."""
    found, missing, bad = numbers(values.reset_index(drop=True))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"feature {feature.name!r}: row {first} holds "
            f"{values.iloc[first]!r}, not a finite number"
        )
    filled = np.where(missing, feature.fill, found).astype(np.float32)[:, None]
    if not feature.indicator:
        return filled
    return np.concatenate([filled, missing.astype(np.float32)[:, None]], axis=1)


def token_feature(
    feature: FeatureConfig, fitted: dict[str, FeatureConfig]
) -> FeatureConfig:
    """How a sequence's tokens are encoded: like the feature it shares (fitted),
    else by its own bins or vocabulary."""
    if feature.shares:
        return fitted[feature.shares]
    kind = "hashed" if feature.bins else "vocabulary"
    return FeatureConfig(
        feature.name, feature.column, kind, feature.bins, feature.vocabulary
    )


def fit_vocabulary(feature: FeatureConfig, values: Iterable[str]) -> FeatureConfig:
    """For ``from_data`` features: the sorted distinct values seen in the column."""
    if feature.kind != "from_data":
        return feature
    distinct = tuple(sorted(set(values)))
    return FeatureConfig(
        name=feature.name,
        column=feature.column,
        kind="vocabulary",
        vocabulary=distinct,
    )


def feature_shape(
    feature: FeatureConfig, fitted: dict[str, FeatureConfig] | None = None
) -> FeatureShape:
    """Shape of an encoded feature; ``from_data`` must be fitted first, and a
    sequence needs the party's fitted features by name (``fitted``)."""
    if feature.kind == "sequence":
        tokens = feature_shape(token_feature(feature, fitted or {}))
        return FeatureShape(
            feature.name, SEQUENCE, tokens.size, feature.max_length, feature.shares
        )
    if feature.kind == "numeric":
        size = 2 if feature.indicator else 1
        return FeatureShape(feature.name, NUMERIC, size, scale=feature.scale)
    if feature.kind == "hashed":
        return FeatureShape(feature.name, INDEX, feature.bins)
    if feature.kind == "vocabulary":
        return FeatureShape(feature.name, INDEX, len(feature.vocabulary) + 1)
    if feature.kind == "multi_hot":
        return FeatureShape(feature.name, MULTI_HOT, len(feature.vocabulary) + 1)
    raise ValueError(f"feature {feature.name!r}: fit its vocabulary before use")


def encode_feature(
    feature: FeatureConfig,
    column: pd.Series,
    fitted: dict[str, FeatureConfig] | None = None,
) -> np.ndarray:
    """Encodes one string column; ``from_data`` must be fitted first, and a
    sequence needs the party's fitted features by name (``fitted``)."""
    if feature.kind == "sequence":
        return _sequence(column, feature, token_feature(feature, fitted or {}))
    if feature.kind == "numeric":
        return _numeric(column, feature)
    if feature.kind == "hashed":
        return _hash_bins(column, feature.bins)
    if feature.kind == "vocabulary":
        return _lookup(column, feature.vocabulary)
    if feature.kind == "multi_hot":
        return _multi_hot(column, feature.vocabulary, feature.separator)
    raise ValueError(f"feature {feature.name!r}: fit its vocabulary before use")


@dataclass(frozen=True)
class PackedBatch:
    """A batch of inputs as three matrices: what a compiled step takes.

    ``indices`` holds the index and sequence features' columns in shape order,
    ``dense`` the multi-hot features' columns side by side, also in shape order,
    and ``numeric`` the numeric features' (float32; none when not given).
    """

    indices: np.ndarray
    dense: np.ndarray
    numeric: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.numeric is None:
            rows = self.indices.shape[0]
            object.__setattr__(self, "numeric", np.zeros((rows, 0), np.float32))


class FeatureRows(Protocol):
    """Encoded inputs of rows, in memory (``EncodedFeatures``) or stored on
    disk: what building and training a party's base reads."""

    shapes: tuple[FeatureShape, ...]

    def take(self, rows: np.ndarray) -> PackedBatch: ...

    def numeric_of(self, rows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class EncodedFeatures:
    """All model inputs of a party, aligned with its rows.

    The inputs live in three matrices (see ``PackedBatch``); multi-hot columns
    are stored as bytes (they hold 0 and 1) and batches get them as float32.
    ``arrays`` are views of the columns by feature name.
    """

    shapes: tuple[FeatureShape, ...]
    packed: PackedBatch

    @property
    def num_rows(self) -> int:
        return int(self.packed.indices.shape[0])

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        packed = self.packed
        return columns_by_feature(
            self.shapes, packed.indices, packed.dense, packed.numeric
        )

    def numeric_of(self, rows: np.ndarray) -> np.ndarray:
        """The numeric features' matrix at these rows."""
        return self.packed.numeric[rows]

    def subset(self, rows: np.ndarray) -> EncodedFeatures:
        """These rows only, in that order, stored as they are."""
        packed = self.packed
        return EncodedFeatures(
            self.shapes,
            PackedBatch(packed.indices[rows], packed.dense[rows], packed.numeric[rows]),
        )

    def take(self, rows: np.ndarray) -> PackedBatch:
        """The inputs of the given row positions (``np.take``: a few times
        faster than indexing by an array of rows, the same values)."""
        packed = self.packed
        return PackedBatch(
            np.take(packed.indices, rows, axis=0),
            np.take(packed.dense, rows, axis=0).astype(np.float32),
            np.take(packed.numeric, rows, axis=0),
        )


def concatenate(parts: list[EncodedFeatures]) -> EncodedFeatures:
    """The rows of several encodings of the same features, one after the other."""
    return EncodedFeatures(
        parts[0].shapes,
        PackedBatch(
            np.concatenate([p.packed.indices for p in parts]),
            np.concatenate([p.packed.dense for p in parts]),
            np.concatenate([p.packed.numeric for p in parts]),
        ),
    )


def columns_by_feature(
    shapes: Sequence[FeatureShape], indices: T, dense: T, numeric: T
) -> dict:
    """Each feature's columns of the packed matrices (numpy arrays or tensors):
    ``[N]`` for an index feature, ``[N, length]`` for a sequence, ``[N, size]``
    for a multi-hot or numeric feature."""
    views, index, offset, number = {}, 0, 0, 0
    for shape in shapes:
        if shape.encoding == INDEX:
            views[shape.name] = indices[:, index]
        elif shape.encoding == SEQUENCE:
            views[shape.name] = indices[:, index : index + shape.length]
        elif shape.encoding == NUMERIC:
            views[shape.name] = numeric[:, number : number + shape.size]
        else:
            views[shape.name] = dense[:, offset : offset + shape.size]
        index += shape.index_columns
        offset += shape.dense_columns
        number += shape.numeric_columns
    return views


def pack(
    shapes: tuple[FeatureShape, ...], arrays: dict[str, np.ndarray], rows: int
) -> EncodedFeatures:
    """Stacks encoded features of ``rows`` rows into the three matrices of
    ``EncodedFeatures`` (no features of a kind: a matrix without columns)."""

    def stacked(columns: Callable[[FeatureShape], int], dtype: type) -> np.ndarray:
        parts = [arrays[s.name].reshape(rows, columns(s)) for s in shapes if columns(s)]
        if not parts:
            return np.zeros((rows, 0), dtype)
        return np.concatenate(parts, axis=1).astype(dtype)

    packed = PackedBatch(
        stacked(lambda s: s.index_columns, np.int32),
        stacked(lambda s: s.dense_columns, np.uint8),
        stacked(lambda s: s.numeric_columns, np.float32),
    )
    return EncodedFeatures(shapes, packed)


def encode_features(
    frame: pd.DataFrame, features: tuple[FeatureConfig, ...]
) -> EncodedFeatures:
    """Encodes every configured feature of a frame of string columns.

    ``from_data`` vocabularies are fitted on this frame; pass fitted features to
    encode a part of a larger file.
    """
    fitted = [
        fit_vocabulary(f, frame[f.column].unique().tolist())
        if f.kind == "from_data"
        else f
        for f in features
    ]
    by_name = {f.name: f for f in fitted}
    return pack(
        tuple(feature_shape(f, by_name) for f in fitted),
        {f.name: encode_feature(f, frame[f.column], by_name) for f in fitted},
        len(frame),
    )
