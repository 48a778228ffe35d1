"""splitrec.common.metrics: AUC, log loss, precision/recall, accumulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitrec.common import metrics
from splitrec.common.metrics import MetricAccumulator, Metrics, binary_metrics, roc_auc


def _pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted as one half."""
    positives = scores[labels == 1]
    negatives = scores[labels == 0]
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (positives.size * negatives.size)


# --- AUC ----------------------------------------------------------------------


def test_auc_of_a_perfect_ranking_is_one():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_auc_of_a_reversed_ranking_is_zero():
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0


def test_auc_of_all_equal_scores_is_one_half():
    assert roc_auc(np.array([1, 0, 1, 0, 0]), np.full(5, 0.3)) == 0.5


def test_auc_of_a_small_hand_case():
    # Prepare: positives 0.8 and 0.4, negatives 0.6 and 0.2. Of the 4 pairs only
    # (0.4, 0.6) is ordered wrongly, so AUC = 3/4.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.8, 0.6, 0.4, 0.2])

    assert roc_auc(labels, scores) == 0.75


def test_auc_counts_a_tied_pair_as_one_half():
    # Prepare: pairs (0.5, 0.5) tie = 1/2; (0.5, 0.1), (0.9, 0.5), (0.9, 0.1) win.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.5, 0.5, 0.9, 0.1])

    assert roc_auc(labels, scores) == 3.5 / 4


def test_auc_accepts_column_vectors_and_boolean_labels():
    labels = np.array([[True], [False], [True], [False]])
    scores = np.array([[0.8], [0.6], [0.4], [0.2]], dtype=np.float32)

    assert roc_auc(labels, scores) == 0.75


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_brute_force_pairwise_auc_on_random_data(seed):
    # Prepare: scores rounded to one decimal so that many ties occur.
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=300)
    scores = np.round(rng.random(300), 1)

    assert roc_auc(labels, scores) == pytest.approx(
        _pairwise_auc(labels, scores), abs=1e-12
    )


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], []])
def test_auc_with_a_single_class_is_nan(labels):
    scores = np.linspace(0.1, 0.9, len(labels))

    assert math.isnan(roc_auc(np.array(labels), scores))


# --- binary_metrics -----------------------------------------------------------


def test_precision_and_recall_at_one_half_by_hand():
    # Prepare: predicted positive (score >= 0.5): rows 0, 2, 4; actual positive:
    # rows 0, 1, 4. True positives: rows 0 and 4. precision = 2/3, recall = 2/3.
    labels = np.array([1, 1, 0, 0, 1])
    scores = np.array([0.9, 0.4, 0.6, 0.2, 0.5])

    metrics = binary_metrics(labels, scores)

    assert metrics.count == 5
    assert metrics.precision == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(2 / 3)


def test_precision_and_recall_at_another_threshold():
    # At 0.7 only row 0 is predicted positive: precision 1/1, recall 1/3.
    labels = np.array([1, 1, 0, 0, 1])
    scores = np.array([0.9, 0.4, 0.6, 0.2, 0.5])

    metrics = binary_metrics(labels, scores, threshold=0.7)

    assert metrics.precision == 1.0
    assert metrics.recall == pytest.approx(1 / 3)


def test_precision_and_recall_are_zero_without_predicted_or_actual_positives():
    nothing_predicted = binary_metrics(np.array([1, 0]), np.array([0.1, 0.2]))
    nothing_actual = binary_metrics(np.array([0, 0]), np.array([0.7, 0.2]))

    assert (nothing_predicted.precision, nothing_predicted.recall) == (0.0, 0.0)
    assert (nothing_actual.precision, nothing_actual.recall) == (0.0, 0.0)
    assert math.isnan(nothing_actual.auc)


def test_log_loss_by_hand():
    # -(ln 0.8 + ln(1 - 0.25)) / 2 = (0.2231435513 + 0.2876820725) / 2
    metrics = binary_metrics(np.array([1, 0]), np.array([0.8, 0.25]))

    assert metrics.loss == pytest.approx(0.2554128119, rel=1e-9)
    assert metrics.auc == 1.0


def test_log_loss_of_a_certain_wrong_score_is_clipped_to_a_finite_value():
    # A score of exactly 1 for a negative row is clipped to 1 - 1e-7.
    metrics = binary_metrics(np.array([0.0]), np.array([1.0]))

    assert metrics.loss == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_binary_metrics_of_no_rows_are_nan_with_count_zero():
    metrics = binary_metrics(np.zeros(0), np.zeros(0))

    assert metrics.count == 0
    assert all(
        math.isnan(v)
        for v in (metrics.loss, metrics.auc, metrics.precision, metrics.recall)
    )


# --- MetricAccumulator --------------------------------------------------------


def test_accumulator_weights_batch_losses_by_batch_size():
    # Prepare: 3 rows at mean loss 0.2 and 1 row at 0.6: (3*0.2 + 1*0.6) / 4 = 0.3,
    # not the plain mean of the two batch losses (0.4).
    accumulator = MetricAccumulator()

    accumulator.add(np.array([1, 0, 1]), np.array([0.9, 0.3, 0.6]), mean_loss=0.2)
    accumulator.add(np.array([0]), np.array([0.7]), mean_loss=0.6)

    assert accumulator.count == 4
    assert accumulator.running_loss() == pytest.approx(0.3)
    result = accumulator.result()
    assert result.count == 4
    assert result.loss == pytest.approx(0.3)


def test_accumulator_computes_auc_precision_recall_over_all_batches():
    # Prepare: all rows: labels [1, 0, 1, 0], scores [0.9, 0.3, 0.6, 0.7].
    # Pairs: 0.9 beats both negatives, 0.6 beats 0.3 but not 0.7: AUC = 3/4.
    # Predicted positive: 0.9, 0.6, 0.7; true positives 2: precision 2/3, recall 1.
    accumulator = MetricAccumulator()

    accumulator.add(np.array([1, 0, 1]), np.array([0.9, 0.3, 0.6]), mean_loss=0.2)
    accumulator.add(np.array([[0]]), np.array([[0.7]]), mean_loss=0.6)
    result = accumulator.result()

    assert result.auc == 0.75
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == 1.0
    # Kept by class: the positives, then the negatives, each sorted.
    np.testing.assert_array_equal(
        accumulator.scores(), np.array([0.6, 0.9, 0.3, 0.7], dtype=np.float32)
    )


def test_the_accumulator_gives_binary_metrics_of_its_rows_to_the_bit():
    # Prepare: 5,000 rows in batches of 128, scores with ties (3 decimals).
    rng = np.random.default_rng(4)
    labels = (rng.random(5000) < 0.3).astype(np.float32)
    scores = np.round(rng.random(5000) * 0.6 + labels * 0.3, 3).astype(np.float32)
    accumulator = MetricAccumulator()
    for start in range(0, 5000, 128):
        part = slice(start, start + 128)
        accumulator.add(labels[part], scores[part], mean_loss=0.5)

    found = accumulator.result()
    restored = MetricAccumulator.from_state(accumulator.state()).result()

    expected = binary_metrics(labels, scores)
    assert (found.auc, found.precision, found.recall) == (
        expected.auc,
        expected.precision,
        expected.recall,
    )
    assert restored == found


def test_scores_in_many_sorted_blocks_give_the_same_metrics_and_state(monkeypatch):
    # Prepare: blocks of 300 scores; one accumulator restored from a state in
    # the middle, one not: the same metrics and the same state at the end.
    monkeypatch.setattr(metrics, "_BLOCK", 300)
    rng = np.random.default_rng(9)
    labels = (rng.random(4000) < 0.4).astype(np.float32)
    scores = np.round(rng.random(4000) * 0.7 + labels * 0.2, 2).astype(np.float32)
    whole, first = MetricAccumulator(), MetricAccumulator()
    for start in range(0, 4000, 128):
        part = slice(start, start + 128)
        whole.add(labels[part], scores[part], mean_loss=0.5)
        if start < 2000:
            first.add(labels[part], scores[part], mean_loss=0.5)
    whole.result()
    resumed = MetricAccumulator.from_state(first.state())
    for start in range(2048, 4000, 128):
        part = slice(start, start + 128)
        resumed.add(labels[part], scores[part], mean_loss=0.5)

    expected = binary_metrics(labels, scores)
    found = resumed.result()
    assert (found.auc, found.precision, found.recall) == (
        expected.auc,
        expected.precision,
        expected.recall,
    )
    assert whole.result() == found
    for key, value in whole.state().items():
        np.testing.assert_array_equal(value, resumed.state()[key])


def test_a_state_of_rows_kept_before_still_loads():
    state = {
        "metrics/labels": np.array([1, 0, 1, 0], np.float32),
        "metrics/scores": np.array([0.9, 0.3, 0.6, 0.7], np.float32),
        "metrics/totals": np.array([1.2, 4], np.float64),
    }

    result = MetricAccumulator.from_state(state).result()

    assert (result.count, result.auc, result.recall) == (4, 0.75, 1.0)


def test_empty_accumulator_reports_nan_and_no_scores():
    accumulator = MetricAccumulator()

    result = accumulator.result()

    assert accumulator.count == 0
    assert math.isnan(accumulator.running_loss())
    assert result.count == 0 and math.isnan(result.loss) and math.isnan(result.auc)
    assert accumulator.scores().shape == (0,)


def test_metrics_is_an_immutable_value():
    metrics = Metrics(count=1, loss=0.5, auc=1.0, precision=1.0, recall=1.0)

    with pytest.raises(AttributeError):
        metrics.loss = 0.1  # type: ignore[misc]
    assert metrics == Metrics(1, 0.5, 1.0, 1.0, 1.0)
