"""Raw column values to model inputs inside a TensorFlow graph.

The twin of ``splitrec.models.features`` for exported models: a ``RawColumns`` module
takes the party's used CSV columns as string tensors ``[B]`` and returns the
input dict its base takes, encoded exactly as ``encode_feature`` encodes them
when a job loads its file (vocabularies and hash bins fitted by the job, index
0 the out-of-vocabulary slot, sequences right-aligned with ``NO_TOKEN``,
numbers parsed with missing cells filled). A numeric cell that is neither a
number nor missing fails the call with ``InvalidArgumentError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from splitrec.config.features import FeatureConfig
from splitrec.models.features import MISSING, NO_TOKEN, token_feature

# Cells (after stripping, lower-cased) that a numeric feature reads as missing
# besides ``MISSING``: what ``splitrec.models.features.numbers`` treats as NaN.
_NAN_WORDS = ("nan", "na")


def used_columns(features: Sequence[FeatureConfig]) -> tuple[str, ...]:
    """The CSV columns the features read, each once, in feature order."""
    return tuple(dict.fromkeys(f.column for f in features))


class _Lookup(tf.Module):
    """A vocabulary's position plus one; 0 for other values."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        super().__init__()
        self.size = len(vocabulary) + 1
        keys = tf.constant(list(vocabulary) or [""], tf.string)
        values = tf.range(1, len(vocabulary) + 1, dtype=tf.int32)
        if not vocabulary:
            # An empty vocabulary maps everything to 0.
            values = tf.zeros([1], tf.int32)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=0
        )

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        return self.table.lookup(values)


class _Hashed(tf.Module):
    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = bins

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.strings.to_hash_bucket_fast(values, self.bins), tf.int32)


def _index_encoder(feature: FeatureConfig) -> tf.Module:
    if feature.kind == "hashed":
        return _Hashed(feature.bins)
    if feature.kind == "vocabulary":
        return _Lookup(feature.vocabulary)
    raise ValueError(
        f"feature {feature.name!r} ({feature.kind}): fit its vocabulary before export"
    )


def _tokens(values: tf.Tensor, separator: str, padding: str | None) -> tf.RaggedTensor:
    """Each value split at ``separator`` (exactly; empty tokens and ``padding``
    ones dropped): ``[B, None]``."""
    tokens = tf.strings.split(values, sep=separator)
    keep = tf.not_equal(tokens, "")
    if padding is not None:
        keep = tf.logical_and(keep, tf.not_equal(tokens, padding))
    return tf.ragged.boolean_mask(tokens, keep)


class _MultiHot(tf.Module):
    def __init__(self, feature: FeatureConfig) -> None:
        super().__init__()
        self.lookup = _Lookup(feature.vocabulary)
        self.separator = feature.separator

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        tokens = _tokens(values, self.separator, None)
        codes = tf.cast(self.lookup(tokens.flat_values), tf.int64)
        places = tf.stack([tokens.value_rowids(), codes], axis=1)
        shape = tf.stack([tf.shape(values, out_type=tf.int64)[0], self.lookup.size])
        hits = tf.scatter_nd(places, tf.ones_like(codes, tf.float32), shape)
        return tf.minimum(hits, 1.0)


class _Sequence(tf.Module):
    """The last ``max_length`` tokens, encoded, most recent last; ``NO_TOKEN``
    before them."""

    def __init__(self, feature: FeatureConfig, tokens: FeatureConfig) -> None:
        super().__init__()
        self.encoder = _index_encoder(tokens)
        self.separator = feature.separator
        self.padding = feature.padding
        self.length = feature.max_length

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        tokens = _tokens(values, self.separator, self.padding)
        kept = tf.minimum(tokens.row_lengths(), self.length)
        last = tf.RaggedTensor.from_row_lengths(
            _last_of_rows(tokens, kept), kept, validate=False
        )
        codes = self.encoder(last.flat_values)
        rows = last.value_rowids()
        within = tf.range(tf.size(codes, out_type=tf.int64)) - tf.gather(
            last.row_starts(), rows
        )
        columns = self.length - tf.gather(kept, rows) + within
        shape = tf.stack([tf.shape(values, out_type=tf.int64)[0], self.length])
        filled = tf.fill(tf.cast(shape, tf.int32), NO_TOKEN)
        return tf.tensor_scatter_nd_update(
            filled, tf.stack([rows, columns], axis=1), codes
        )


def _last_of_rows(tokens: tf.RaggedTensor, kept: tf.Tensor) -> tf.Tensor:
    """The flat values of each row's last ``kept`` tokens, row by row."""
    starts = tokens.row_limits() - kept
    positions = tf.ragged.range(starts, tokens.row_limits())
    return tf.gather(tokens.flat_values, positions.flat_values)


class _Numeric(tf.Module):
    def __init__(self, feature: FeatureConfig) -> None:
        super().__init__()
        self.name_ = feature.name
        self.fill = feature.fill
        self.indicator = feature.indicator

    def __call__(self, values: tf.Tensor) -> tf.Tensor:
        text = tf.strings.strip(values)
        lower = tf.strings.lower(text)
        missing = tf.zeros_like(text, tf.bool)
        for word in (*MISSING, *_NAN_WORDS):
            missing = tf.logical_or(missing, tf.equal(lower, word))
        parsed = tf.strings.to_number(tf.where(missing, "0", text), tf.float64)
        parsed = tf.debugging.check_numerics(
            parsed, f"numeric feature {self.name_!r}: a cell is not a finite number"
        )
        fill = tf.constant(self.fill, tf.float64)
        filled = tf.cast(tf.where(missing, fill, parsed), tf.float32)[:, None]
        if not self.indicator:
            return filled
        return tf.concat([filled, tf.cast(missing, tf.float32)[:, None]], axis=1)


def _encoder(feature: FeatureConfig, fitted: Mapping[str, FeatureConfig]) -> tf.Module:
    if feature.kind == "sequence":
        return _Sequence(feature, token_feature(feature, dict(fitted)))
    if feature.kind == "numeric":
        return _Numeric(feature)
    if feature.kind == "multi_hot":
        return _MultiHot(feature)
    return _index_encoder(feature)


class RawColumns(tf.Module):
    """A party's fitted features as a graph: ``{column: string [B]}`` → the
    base's input dict (by feature name)."""

    def __init__(self, features: Sequence[FeatureConfig]) -> None:
        super().__init__(name="raw_columns")
        fitted = {f.name: f for f in features}
        self.features = tuple(features)
        self.columns = used_columns(features)
        self.encoders = [_encoder(f, fitted) for f in features]

    def __call__(self, columns: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {
            feature.name: encoder(columns[feature.column])
            for feature, encoder in zip(self.features, self.encoders, strict=True)
        }
