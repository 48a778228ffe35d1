"""Row splits and batch order, derived from (job seed, epoch) alone.

Every party computes the same validation rows and the same epoch permutation
locally, so no row list ever crosses the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SPLIT_STREAM = 0x5EED
_EPOCH_STREAM = 0xE90C


@dataclass(frozen=True)
class RowSplit:
    train: np.ndarray
    validation: np.ndarray


def index_dtype(rows: int) -> type:
    """The narrowest integer type for positions below ``rows``: a job's row
    lists take 4 bytes a row up to 2^31 rows."""
    return np.int32 if rows < 2**31 else np.int64


def split_rows(num_rows: int, validation_fraction: float, seed: int) -> RowSplit:
    """Chooses validation rows at random from the seed; both parts in row order.

    The order is the seed's permutation of the rows (``Generator.permutation``
    shuffles ``arange`` so; shuffled in place here, in 4 bytes a row).
    """
    if num_rows < 2:
        raise ValueError(f"need at least 2 rows to split, got {num_rows}")
    num_validation = min(max(1, round(num_rows * validation_fraction)), num_rows - 1)
    order = np.arange(num_rows, dtype=index_dtype(num_rows))
    np.random.default_rng([seed, _SPLIT_STREAM]).shuffle(order)
    validation = np.sort(order[:num_validation])
    # Sorted in place: the training rows are a view of the order.
    train = order[num_validation:]
    train.sort()
    return RowSplit(train=train, validation=validation)


def steps_per_epoch(num_rows: int, batch_size: int) -> int:
    return -(-num_rows // batch_size)


def epoch_order(train_rows: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The training rows in the shuffled order of one epoch: the rows at the
    seed's permutation of their positions, made in one array of their size."""
    order = np.arange(train_rows.size, dtype=train_rows.dtype)
    np.random.default_rng([seed, _EPOCH_STREAM, epoch]).shuffle(order)
    # order[i] is read before it is written, so taking in place is safe.
    np.take(train_rows, order, out=order, mode="clip")
    return order


def batch_rows(ordered_rows: np.ndarray, batch_size: int, step: int) -> np.ndarray:
    """Row positions of one step; the last batch of a pass may be smaller."""
    return ordered_rows[step * batch_size : (step + 1) * batch_size]


# Evaluation and prediction passes read larger batches: no gradients, same result.
MIN_EVAL_BATCH = 1024


def eval_batch_size(batch_size: int) -> int:
    return max(batch_size, MIN_EVAL_BATCH)


def batch_length(num_rows: int, batch_size: int, step: int) -> int:
    """How many rows step ``step`` of a pass over ``num_rows`` rows holds."""
    return max(0, min(batch_size, num_rows - step * batch_size))
