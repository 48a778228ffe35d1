"""Raw column values to model inputs, once per data set (never per batch).

Every feature becomes either an index column (``int32 [N]``, looked up in an
embedding table) or a multi-hot matrix (``float32 [N, size]``). Index 0 is the
out-of-vocabulary slot for vocabulary features; hashed features use every bin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.config import FeatureConfig

INDEX = "index"
MULTI_HOT = "multi_hot"


@dataclass(frozen=True)
class FeatureShape:
    """What the model needs to know about one encoded feature."""

    name: str
    encoding: str
    size: int


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


def feature_shape(feature: FeatureConfig) -> FeatureShape:
    """Shape of an encoded feature; ``from_data`` must be fitted first."""
    if feature.kind == "hashed":
        return FeatureShape(feature.name, INDEX, feature.bins)
    if feature.kind == "vocabulary":
        return FeatureShape(feature.name, INDEX, len(feature.vocabulary) + 1)
    if feature.kind == "multi_hot":
        return FeatureShape(feature.name, MULTI_HOT, len(feature.vocabulary) + 1)
    raise ValueError(f"feature {feature.name!r}: fit its vocabulary before use")


def encode_feature(feature: FeatureConfig, column: pd.Series) -> np.ndarray:
    """Encodes one string column; ``from_data`` must be fitted first."""
    if feature.kind == "hashed":
        return _hash_bins(column, feature.bins)
    if feature.kind == "vocabulary":
        return _lookup(column, feature.vocabulary)
    if feature.kind == "multi_hot":
        return _multi_hot(column, feature.vocabulary, feature.separator)
    raise ValueError(f"feature {feature.name!r}: fit its vocabulary before use")


@dataclass(frozen=True)
class PackedBatch:
    """A batch of inputs as two matrices: what a compiled step takes.

    ``indices`` holds the index features' columns in shape order, ``dense`` the
    multi-hot features' columns side by side, also in shape order.
    """

    indices: np.ndarray
    dense: np.ndarray


@dataclass(frozen=True)
class EncodedFeatures:
    """All model inputs of a party, aligned with its rows.

    The inputs live in two matrices (see ``PackedBatch``); multi-hot columns are
    stored as bytes (they hold 0 and 1) and batches get them as float32.
    ``arrays`` are views of the columns by feature name.
    """

    shapes: tuple[FeatureShape, ...]
    packed: PackedBatch

    @property
    def num_rows(self) -> int:
        return int(self.packed.indices.shape[0])

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        views, index, offset = {}, 0, 0
        for shape in self.shapes:
            if shape.encoding == INDEX:
                views[shape.name] = self.packed.indices[:, index]
                index += 1
            else:
                views[shape.name] = self.packed.dense[:, offset : offset + shape.size]
                offset += shape.size
        return views

    def take(self, rows: np.ndarray) -> PackedBatch:
        """The inputs of the given row positions."""
        return PackedBatch(
            self.packed.indices[rows], self.packed.dense[rows].astype(np.float32)
        )


def concatenate(parts: list[EncodedFeatures]) -> EncodedFeatures:
    """The rows of several encodings of the same features, one after the other."""
    return EncodedFeatures(
        parts[0].shapes,
        PackedBatch(
            np.concatenate([p.packed.indices for p in parts]),
            np.concatenate([p.packed.dense for p in parts]),
        ),
    )


def pack(
    shapes: tuple[FeatureShape, ...], arrays: dict[str, np.ndarray], rows: int
) -> EncodedFeatures:
    """Stacks encoded features of ``rows`` rows into the two matrices of
    ``EncodedFeatures`` (no features: matrices without columns)."""
    index = [arrays[s.name] for s in shapes if s.encoding == INDEX]
    dense = [arrays[s.name] for s in shapes if s.encoding == MULTI_HOT]
    packed = PackedBatch(
        np.stack(index, axis=1).astype(np.int32)
        if index
        else np.zeros((rows, 0), np.int32),
        np.concatenate(dense, axis=1).astype(np.uint8)
        if dense
        else np.zeros((rows, 0), np.uint8),
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
    return pack(
        tuple(feature_shape(f) for f in fitted),
        {f.name: encode_feature(f, frame[f.column]) for f in fitted},
        len(frame),
    )
