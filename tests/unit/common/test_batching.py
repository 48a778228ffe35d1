"""splitrec.common.batching: row splits, epoch order and batch positions."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.common.batching import (
    MIN_EVAL_BATCH,
    batch_length,
    batch_rows,
    epoch_order,
    eval_batch_size,
    split_rows,
    steps_per_epoch,
)

# --- split_rows ---------------------------------------------------------------


def test_split_is_disjoint_covering_and_sorted():
    split = split_rows(100, 0.1, seed=1234)

    assert split.validation.size == 10
    assert split.train.size == 90
    assert np.intersect1d(split.train, split.validation).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([split.train, split.validation])), np.arange(100)
    )
    assert np.all(np.diff(split.train) > 0)
    assert np.all(np.diff(split.validation) > 0)


def test_split_is_deterministic_for_a_seed():
    first = split_rows(50, 0.2, seed=7)
    second = split_rows(50, 0.2, seed=7)

    np.testing.assert_array_equal(first.train, second.train)
    np.testing.assert_array_equal(first.validation, second.validation)


def test_split_differs_between_seeds():
    first = split_rows(50, 0.2, seed=7)
    second = split_rows(50, 0.2, seed=8)

    assert not np.array_equal(first.validation, second.validation)


def test_split_is_not_simply_the_last_rows():
    split = split_rows(1000, 0.1, seed=1234)

    assert not np.array_equal(split.validation, np.arange(900, 1000))
    assert not np.array_equal(split.validation, np.arange(100))


@pytest.mark.parametrize(
    ("num_rows", "fraction", "validation"),
    [
        (100, 0.1, 10),
        (7, 0.3, 2),  # 2.1 rounds down
        (7, 0.5, 4),  # 3.5 rounds to the even 4
        (9, 0.5, 4),  # 4.5 rounds to the even 4
        (10, 0.26, 3),  # 2.6 rounds up
        (10, 0.01, 1),  # at least one validation row
        (10, 0.99, 9),  # at least one training row
        (2, 0.5, 1),
        (2, 0.01, 1),
        (2, 0.99, 1),
    ],
)
def test_split_size_rounds_the_fraction_and_keeps_both_parts(
    num_rows, fraction, validation
):
    split = split_rows(num_rows, fraction, seed=0)

    assert split.validation.size == validation
    assert split.train.size == num_rows - validation


@pytest.mark.parametrize("num_rows", [0, 1])
def test_split_of_fewer_than_two_rows_is_refused(num_rows):
    with pytest.raises(
        ValueError, match=f"need at least 2 rows to split, got {num_rows}"
    ):
        split_rows(num_rows, 0.1, seed=0)


# --- epoch_order --------------------------------------------------------------


def test_epoch_order_is_a_permutation_of_the_training_rows():
    train = np.array([0, 2, 3, 5, 8, 13, 21])

    order = epoch_order(train, seed=1234, epoch=0)

    assert order.size == train.size
    np.testing.assert_array_equal(np.sort(order), train)


def test_epoch_order_is_deterministic_for_seed_and_epoch():
    train = np.arange(3, 103)

    first = epoch_order(train, seed=1234, epoch=2)
    second = epoch_order(train.copy(), seed=1234, epoch=2)

    np.testing.assert_array_equal(first, second)


def test_epoch_order_differs_across_epochs_and_seeds():
    train = np.arange(100)

    epoch0 = epoch_order(train, seed=1234, epoch=0)
    epoch1 = epoch_order(train, seed=1234, epoch=1)
    other_seed = epoch_order(train, seed=4321, epoch=0)

    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, other_seed)
    assert not np.array_equal(epoch0, train)


def test_epoch_order_does_not_change_its_input():
    train = np.arange(10)

    epoch_order(train, seed=1, epoch=0)

    np.testing.assert_array_equal(train, np.arange(10))


def test_epoch_order_of_no_rows_is_empty():
    assert epoch_order(np.array([], dtype=np.int64), seed=1, epoch=0).size == 0


# --- batches ------------------------------------------------------------------


def test_batch_rows_cut_the_order_into_steps_with_a_short_last_batch():
    ordered = np.arange(10, 20)

    batches = [batch_rows(ordered, 4, step) for step in range(4)]

    np.testing.assert_array_equal(batches[0], [10, 11, 12, 13])
    np.testing.assert_array_equal(batches[1], [14, 15, 16, 17])
    np.testing.assert_array_equal(batches[2], [18, 19])
    assert batches[3].size == 0


@pytest.mark.parametrize(
    ("num_rows", "batch_size", "step", "length"),
    [
        (10, 4, 0, 4),
        (10, 4, 1, 4),
        (10, 4, 2, 2),
        (10, 4, 3, 0),
        (10, 4, 9, 0),
        (8, 4, 1, 4),
        (3, 128, 0, 3),
        (0, 4, 0, 0),
    ],
)
def test_batch_length_counts_rows_of_a_step(num_rows, batch_size, step, length):
    assert batch_length(num_rows, batch_size, step) == length


def test_batch_length_agrees_with_batch_rows():
    ordered = np.arange(37)

    for step in range(5):
        assert batch_rows(ordered, 8, step).size == batch_length(37, 8, step)


@pytest.mark.parametrize(
    ("num_rows", "batch_size", "steps"),
    [(10, 4, 3), (8, 4, 2), (1, 128, 1), (0, 4, 0), (128, 128, 1), (129, 128, 2)],
)
def test_steps_per_epoch_rounds_up(num_rows, batch_size, steps):
    assert steps_per_epoch(num_rows, batch_size) == steps


@pytest.mark.parametrize(("batch", "expected"), [(1, 1024), (128, 1024), (2048, 2048)])
def test_eval_batch_size_is_at_least_the_minimum(batch, expected):
    assert MIN_EVAL_BATCH == 1024
    assert eval_batch_size(batch) == expected
