"""Jobs of several tasks: the labels list in a party's config, per-task metrics
and their records, the multi-task objective, and MMoE learning two tasks."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from splitrec.common.errors import ConfigError
from splitrec.common.history import (
    EpochRecord,
    plot_curves,
    record_from_json,
    write_history,
)
from splitrec.common.metrics import (
    MetricAccumulator,
    Metrics,
    Task,
    TaskMetrics,
    binary_metrics,
    task_metrics,
)
from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.config.privacy import PrivacySettings
from splitrec.coordinator.records import summary_lines
from splitrec.models.build import build_base, build_fuse
from splitrec.models.features import INDEX, FeatureShape, PackedBatch
from splitrec.models.steps import CentralStep
from splitrec.party_server.label_job import write_scores
from splitrec.wire.serde import metrics_from_proto, metrics_to_proto

TASKS = (Task("like", 1.0), Task("love", 0.5))

LABEL_PARTY = {
    "party": "bob",
    "data": {"path": "bob.csv", "columns": ["ID", "MovieID", "Rating"]},
    "features": [{"name": "MovieID", "type": "hashed", "bins": 50}],
    "labels": [
        {"name": "like", "column": "Rating", "positive_above": 3},
        {"name": "love", "column": "Rating", "positive_above": 4, "weight": 0.5},
    ],
    "model": {"family": "mmoe", "embedding_dim": 4, "deep_units": [8, 2]},
    "peers": [{"name": "alice", "address": "127.0.0.1:50051"}],
    "tls": {"insecure": True},
}


def _load(tmp_path: Path, **changes: object):
    data = copy.deepcopy(LABEL_PARTY)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "bob.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_party_config(path)


# --- config ---------------------------------------------------------------------


def test_a_labels_list_names_and_weighs_each_task(tmp_path):
    config = _load(tmp_path)

    assert config.tasks == TASKS
    assert [label.rule for label in config.labels] == ["Rating > 3", "Rating > 4"]
    assert config.model.tasks == 2
    assert (config.model.experts, config.model.expert_units) == (4, (64, 32))
    assert [label.key for label in config.labels] == ["labels[0]", "labels[1]"]


@pytest.mark.parametrize(
    ("changes", "key", "problem"),
    [
        (
            {"label": {"column": "Rating", "positive_above": 3}},
            "labels",
            "give either 'label' (one task) or 'labels' (a list of tasks), not both",
        ),
        ({"labels": []}, "labels", "list at least one label"),
        (
            {
                "labels": [
                    {"name": "like", "column": "Rating", "positive_above": 3},
                    {"name": "like", "column": "Rating", "positive_above": 4},
                ]
            },
            "labels",
            "task names used twice: ['like']",
        ),
        (
            {"labels": [{"column": "Rating", "positive_above": 3}]},
            "labels[0].name",
            "missing",
        ),
        (
            {"labels": [{"name": "a/b", "column": "Rating", "positive_above": 3}]},
            "labels[0].name",
            "is not a safe name",
        ),
        (
            {
                "labels": [
                    {"name": "x", "column": "Rating", "positive_above": 3, "weight": 0}
                ]
            },
            "labels[0].weight",
            "",
        ),
        (
            {"model": {"family": "dnn", "embedding_dim": 4, "deep_units": [8, 2]}},
            "model.family",
            "a dnn fuse predicts one label, but this party lists 2 (labels); use "
            "family mmoe for several tasks",
        ),
        (
            {"model": {"family": "mmoe", "fuse_units": [4]}},
            "model.fuse_units",
            "belongs to model family",
        ),
        (
            {"model": {"family": "mmoe", "experts": 0}},
            "model.experts",
            "",
        ),
        (
            {"model": {"family": "mmoe", "expert_units": [0]}},
            "model.expert_units[0]",
            "0 is outside the allowed range",
        ),
        (
            {"model": {"family": "mmoe", "tower_units": "wide"}},
            "model.tower_units",
            "",
        ),
        (
            {"features": [{"name": "Rating", "type": "hashed", "bins": 5}]},
            "labels[0].column",
            "'Rating' is a label; it must not be a feature column",
        ),
        (  # a list of one label is named by its place in the list too
            {"labels": [{"name": "x", "column": "MovieID", "positive_above": 3}]},
            "labels[0].column",
            "'MovieID' is a label; it must not be a feature column",
        ),
    ],
)
def test_a_bad_labels_list_is_refused_naming_its_key(tmp_path, changes, key, problem):
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, **changes)
    assert f"key '{key}'" in str(error.value)
    assert problem in str(error.value)


def test_mmoe_settings_belong_to_the_fuse_only(tmp_path):
    data = copy.deepcopy(LABEL_PARTY)
    data.pop("labels")
    data["model"]["experts"] = 3
    path = tmp_path / "alice.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match="model.experts.*only the label party has"):
        load_party_config(path)


def test_privacy_task_is_a_safe_name_and_names_a_task(tmp_path):
    job = {
        "job": "j",
        "parties": [
            {"name": "alice", "address": "127.0.0.1:1"},
            {"name": "bob", "address": "127.0.0.1:2"},
        ],
        "label_party": "bob",
        "tls": {"insecure": True},
        "privacy": {"gradient_defense": {"method": "iso"}, "task": "love"},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    privacy = load_job_config(path).privacy
    assert privacy.task == "love"
    assert privacy.task_problem(["like", "love"]) is None
    assert "not a task of this job" in privacy.task_problem(["like"])
    untasked = PrivacySettings(label_epsilon=1.0)
    assert untasked.task_problem(["label"]) is None
    assert "name the one to protect with privacy.task" in untasked.task_problem(
        ["like", "love"]
    )
    assert PrivacySettings().task_problem(["like", "love"]) is None


# --- metrics ------------------------------------------------------------------


def _planted(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((rows, 2)) < 0.4).astype(np.float32)
    scores = np.clip(labels * 0.3 + rng.random((rows, 2)) * 0.7, 0.01, 0.99)
    return labels, scores.astype(np.float32)


def test_task_metrics_are_each_tasks_and_their_weighted_loss_and_means():
    labels, scores = _planted(400, 1)

    found = task_metrics(TASKS, labels, scores)

    like = binary_metrics(labels[:, 0], scores[:, 0])
    love = binary_metrics(labels[:, 1], scores[:, 1])
    assert found.tasks == (
        TaskMetrics("like", like.loss, like.auc, like.precision, like.recall),
        TaskMetrics("love", love.loss, love.auc, love.precision, love.recall),
    )
    assert found.loss == pytest.approx(like.loss + 0.5 * love.loss)
    assert found.auc == pytest.approx((like.auc + love.auc) / 2)
    assert found.count == 400
    # One task: exactly today's metrics, no tasks.
    assert task_metrics(TASKS[:1], labels[:, 0], scores[:, 0]) == like


def test_a_multi_task_accumulator_keeps_each_tasks_loss_through_its_state():
    accumulator = MetricAccumulator(TASKS)
    labels, scores = _planted(300, 2)
    accumulator.add(labels[:100], scores[:100], 0.9, [0.6, 0.6])
    running = accumulator.running()
    assert [t.loss for t in running.tasks] == [0.6, 0.6]
    assert math.isnan(running.tasks[0].auc)

    restored = MetricAccumulator.from_state(accumulator.state(), TASKS)
    restored.add(labels[100:], scores[100:], 0.6, [0.4, 0.4])

    result = restored.result()
    assert result.count == 300
    assert result.loss == pytest.approx((0.9 * 100 + 0.6 * 200) / 300)
    assert result.tasks[1].loss == pytest.approx((0.6 * 100 + 0.4 * 200) / 300)
    assert result.tasks[0].auc == binary_metrics(labels[:, 0], scores[:, 0]).auc
    with pytest.raises(ValueError, match="holds 2 task losses, not 0"):
        MetricAccumulator.from_state(accumulator.state())


def test_task_metrics_cross_the_wire_and_one_task_has_none():
    labels, scores = _planted(50, 3)
    metrics = task_metrics(TASKS, labels, scores)
    assert metrics_from_proto(metrics_to_proto(metrics)) == metrics
    single = Metrics(5, 0.5, 0.7, 0.6, 0.4)
    assert metrics_from_proto(metrics_to_proto(single)) == single


# --- records ------------------------------------------------------------------


def _record(epoch: int, labels: np.ndarray, scores: np.ndarray) -> EpochRecord:
    metrics = task_metrics(TASKS, labels, scores)
    return EpochRecord.of(epoch, metrics, metrics, 100, 2.0, 50.0)


def test_history_keeps_todays_keys_and_adds_every_tasks_figures(tmp_path):
    labels, scores = _planted(200, 4)
    labels[:, 1] = 0  # love: one class in these rows, its AUC undefined
    records = [_record(0, labels, scores), _record(1, labels, scores)]
    path = tmp_path / "history.json"

    write_history(path, records)

    rows = json.loads(path.read_text())
    assert list(rows[0]["tasks"]) == ["like", "love"]
    assert rows[0]["tasks"]["love"]["val_auc"] is None
    assert rows[0]["val_loss"] == pytest.approx(
        rows[0]["tasks"]["like"]["val_loss"]
        + 0.5 * rows[0]["tasks"]["love"]["val_loss"]
    )
    back = record_from_json(rows[1])
    assert math.isnan(back.tasks["love"]["val_auc"])
    assert back.tasks["like"] == records[1].tasks["like"]
    single = EpochRecord(1, 0.6, 0.7, 0.6, 0.7, 0.7, 0.6, 9.0, 9.0, 1.0)
    write_history(path, [single])
    assert "tasks" not in json.loads(path.read_text())[0]

    lines = summary_lines(records, tmp_path)
    assert any(line.startswith("  task like: val AUC") for line in lines)
    assert any(line.startswith("  task love: val AUC n/a") for line in lines)
    assert "| like: val loss" in records[0].summary(2)
    plot_curves(tmp_path / "curves.png", records)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_scores_of_several_tasks_get_a_column_each(tmp_path):
    path = tmp_path / "scores.csv"
    scores = np.array([[0.25, 0.125], [0.5, 0.75]], np.float32)
    write_scores(path, np.array(["7", "9"]), scores, ["like", "love"])
    assert path.read_text() == (
        "ID,score_like,score_love\n7,0.250000,0.125000\n9,0.500000,0.750000\n"
    )
    write_scores(path, np.array(["7"]), np.array([0.5], np.float32))
    assert path.read_text() == "ID,score\n7,0.500000\n"


# --- the model ------------------------------------------------------------------


def test_mmoe_learns_two_tasks_that_need_different_features(tmp_path):
    """like follows alice's user, love bob's item: each task must gate its
    way to the right part of the shared input."""
    config = _load(tmp_path)
    model = config.model
    alice = [FeatureShape("user", INDEX, 20)]
    bob = [FeatureShape("item", INDEX, 16)]
    bases = [build_base("alice", alice, model, 3), build_base("bob", bob, model, 3)]
    outputs = {"alice": bases[0].output_spec, "bob": bases[1].output_spec}
    step = CentralStep(bases, build_fuse(outputs, model, 3), "adam", 0.02, TASKS)
    rng = np.random.default_rng(5)
    users, items = rng.integers(0, 20, 2048), rng.integers(0, 16, 2048)
    labels = np.stack([users % 2, (items % 4 == 0)], axis=1).astype(np.float32)
    empty = np.zeros((2048, 0), np.float32)

    def batches(rows: np.ndarray) -> list[PackedBatch]:
        return [
            PackedBatch(users[rows, None].astype(np.int32), empty[rows], empty[rows]),
            PackedBatch(items[rows, None].astype(np.int32), empty[rows], empty[rows]),
        ]

    for i in range(200):
        rows = np.random.default_rng(i).integers(0, 2048, 128)
        loss, losses, scores = step.train(batches(rows), labels[rows])
        assert scores.shape == (128, 2) and losses.shape == (2,)
        assert float(loss) == pytest.approx(float(losses[0] + 0.5 * losses[1]))
    found = task_metrics(TASKS, labels, step.predict(batches(np.arange(2048))).numpy())
    assert found.tasks[0].auc > 0.95 and found.tasks[1].auc > 0.95
