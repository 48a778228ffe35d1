"""Every model family: shapes, the compatibility check, a checkpoint round trip,
and learning on planted data (split = centralized is tested in integration)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from splitrec.common.errors import ConfigError
from splitrec.common.metrics import roc_auc
from splitrec.config.jobspec import OutputSpec
from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base, build_fuse, build_party_base
from splitrec.models.determinism import unordered_sums
from splitrec.models.features import (
    INDEX,
    MULTI_HOT,
    NO_TOKEN,
    NUMERIC,
    SEQUENCE,
    EncodedFeatures,
    FeatureShape,
    PackedBatch,
)
from splitrec.models.registry import FAMILIES, combination_problem
from splitrec.models.steps import (
    BaseStep,
    CentralStep,
    FuseStep,
    create_weights,
    packed,
    unpack,
)
from splitrec.party_server.checkpoints import ModelState
from splitrec.privacy.mid import Bottleneck
from tests.outputs import deepfm_output, output_of
from tests.support import ROOT

FAMILY_NAMES = sorted(FAMILIES)
ALICE = [FeatureShape("user", INDEX, 20), FeatureShape("tags", MULTI_HOT, 4)]
BOB = [FeatureShape("item", INDEX, 10)]
# BST's bob: the item and the items rated before it, sharing the item table.
BOB_WITH_HISTORY = [*BOB, FeatureShape("history", SEQUENCE, 10, 3, "item")]


def _bob(family: str) -> list[FeatureShape]:
    return BOB_WITH_HISTORY if family == "bst" else BOB


def _alice_model(family: str) -> ModelConfig:
    """alice holds no sequence: in a BST job her base is a DNN's."""
    return _model("dnn" if family == "bst" else family)


def _model(family: str) -> ModelConfig:
    if family == "custom":  # the worked example
        return ModelConfig(
            4,
            (8,),
            family="custom",
            base="cross_network:build_base",
            fuse="cross_network:build_fuse",
            output_width=5,
            code=ROOT / "examples" / "custom_models",
        )
    return ModelConfig(4, (8, 3), (6,), family=family)


def _planted(
    rows: int, seed: int, family: str = "dnn"
) -> tuple[list[PackedBatch], np.ndarray]:
    """Labels from alice's user and bob's item: each value adds its own effect
    (bob's history, for BST, is noise)."""
    effects = np.random.default_rng(99)
    user_effect, item_effect = effects.normal(size=20), effects.normal(size=10)
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 20, rows)
    item = rng.integers(0, 10, rows)
    tags = (rng.random((rows, 4)) < 0.3).astype(np.float32)
    labels = (user_effect[user] + item_effect[item] > 0).astype(np.float32)
    alice = PackedBatch(user[:, None].astype(np.int32), tags)
    columns = [item[:, None]]
    if family == "bst":
        columns.append(rng.integers(NO_TOKEN, 10, (rows, 3)))
    bob = PackedBatch(
        np.concatenate(columns, axis=1).astype(np.int32),
        np.zeros((rows, 0), np.float32),
    )
    return [alice, bob], labels


def _central(family: str, seed: int) -> CentralStep:
    model = _model(family)
    bases = [
        build_base("alice", ALICE, _alice_model(family), seed),
        build_base("bob", _bob(family), model, seed),
    ]
    outputs = {"alice": bases[0].output_spec, "bob": bases[1].output_spec}
    return CentralStep(bases, build_fuse(outputs, model, seed), "adam", 0.02)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_a_base_outputs_the_width_of_its_declared_parts(family):
    step = _central(family, 1)
    batches, _ = _planted(5, 0, family)
    for base, batch in zip(step.bases, batches, strict=True):
        spec = base.output_spec
        models = {"alice_base": _alice_model(family), "bob_base": _model(family)}
        assert spec.family == models[base.name].family
        assert base(unpack(base.shapes, packed(batch))).shape == (5, spec.width)
    assert step.predict(batches).shape == (5,)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_no_family_sums_in_an_order_chosen_at_run_time(family):
    step = _central(family, 1)
    batches, _ = _planted(5, 0, family)

    def forward_and_backward():
        with tf.GradientTape() as tape:
            hiddens = [
                base(unpack(base.shapes, packed(batch)))
                for base, batch in zip(step.bases, batches, strict=True)
            ]
            loss = tf.reduce_sum(step.fuse(hiddens))
        return tape.gradient(loss, step.variables)

    assert unordered_sums(forward_and_backward) == []


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_learns_planted_structure(family):
    step = _central(family, 3)
    batches, labels = _planted(2048, 1, family)
    for _ in range(150):
        picked = np.random.default_rng(_).integers(0, 2048, 128)
        step.train(
            [PackedBatch(b.indices[picked], b.dense[picked]) for b in batches],
            labels[picked],
        )
    scores = step.predict(batches).numpy()
    assert roc_auc(labels, scores) > 0.9


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_learns_split_with_mid_at_the_feature_party(family):
    """alice's hidden tensor through MID's bottleneck (a sampled code each
    step, the same noise in the forward and the backward), bob's fuse on it:
    the planted structure is learnt, and validation on the code's mean. (Two
    initial weights: a small model on 150 steps now and then loses a ReLU
    unit for good, with or without MID.)"""
    assert max(_split_with_mid(family, seed) for seed in (3, 4)) > 0.85


def _split_with_mid(family: str, seed: int) -> float:
    model = _model(family)
    alice = build_base("alice", ALICE, _alice_model(family), seed)
    bob = build_base("bob", _bob(family), model, seed)
    outputs = {"alice": alice.output_spec, "bob": bob.output_spec}
    width = alice.output_spec.width
    feature = BaseStep(
        alice,
        "adam",
        0.02,
        bottleneck=Bottleneck(width, 4, seed=seed, name="mid"),
        mid_weight=0.001,
    )
    label = FuseStep(bob, build_fuse(outputs, model, seed), 1, "adam", 0.02)
    batches, labels = _planted(2048, 1, family)
    for step in range(150):
        rng = np.random.default_rng(step)
        picked = rng.integers(0, 2048, 128)
        mine, theirs = (
            PackedBatch(b.indices[picked], b.dense[picked]) for b in batches
        )
        noise = rng.standard_normal((128, 4)).astype(np.float32)
        hidden = feature.forward(mine, noise=noise).numpy()
        *_, [gradient] = label.train(theirs, [hidden], labels[picked])
        feature.backward(mine, gradient.numpy(), noise)
    scores = label.predict(batches[1], [feature.forward(batches[0]).numpy()])
    return roc_auc(labels, scores.numpy())


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_a_checkpoint_round_trip_gives_the_same_scores(family):
    model = _model(family)
    batches, labels = _planted(64, 2, family)

    def label_step(seed: int) -> FuseStep:
        alice = build_base("alice", ALICE, _alice_model(family), seed)
        bob = build_base("bob", _bob(family), model, seed)
        outputs = {"alice": alice.output_spec, "bob": bob.output_spec}
        fuse = build_fuse(outputs, model, seed)
        return FuseStep(bob, fuse, 1, "adam", 0.02)

    width = sum(size for _, size in FAMILIES[family].parts(model))
    peer = np.random.default_rng(0).random((64, width)).astype(np.float32)
    saved = label_step(5)
    saved.train(batches[1], [peer], labels)
    state = ModelState("s", saved.variables, saved.optimizer.variables)
    restored = label_step(6)
    before = restored.predict(batches[1], [peer]).numpy()

    ModelState("s", restored.variables, restored.optimizer.variables).load(
        state.arrays(), "ckpt"
    )

    after = restored.predict(batches[1], [peer]).numpy()
    np.testing.assert_array_equal(after, saved.predict(batches[1], [peer]).numpy())
    assert not np.array_equal(before, after)


@pytest.mark.parametrize(
    ("label_family", "outputs", "needle"),
    [
        ("deepfm", {"a": deepfm_output(), "b": deepfm_output(16, 8)}, None),
        ("deepfm", {"a": deepfm_output(32, 8), "b": deepfm_output(32, 4)}, "differ"),
        ("deepfm", {"a": output_of("dnn"), "b": deepfm_output()}, "party a's base"),
        ("wide_deep", {"a": output_of("wide_deep"), "b": output_of("wide_deep")}, None),
        ("wide_deep", {"a": output_of("dnn"), "b": output_of("wide_deep")}, "dnn"),
        ("dnn", {"a": deepfm_output(), "b": output_of("wide_deep")}, None),
        ("xgboost", {"a": output_of("dnn")}, "unknown model family 'xgboost'"),
        (
            "dnn",
            {"a": type(output_of("dnn"))("xgboost", (("out", 4),))},
            "party a's base: unknown model family 'xgboost'",
        ),
    ],
)
def test_the_compatibility_check(label_family, outputs, needle):
    problem = combination_problem(label_family, outputs)
    if needle is None:
        assert problem is None
    else:
        assert needle in problem


def test_a_fuse_needs_the_parts_it_reads():
    stripped = output_of("wide_deep")
    stripped = type(stripped)("wide_deep", (("deep", 32),))

    problem = combination_problem("wide_deep", {"a": stripped})

    assert problem == (
        "party a's wide_deep output has no part 'first_order', which a wide_deep "
        "fuse reads (its parts: wide_deep [deep 32])"
    )


@pytest.mark.parametrize(("aggregation", "scale"), [("sum", 1.0), ("average", 0.5)])
@pytest.mark.parametrize("family", ["dnn", "custom"])
def test_a_fuse_that_aggregates_sees_the_sum_or_mean_of_the_outputs(
    family, aggregation, scale
):
    model = _model(family).model_copy(update={"aggregation": aggregation})
    width = FAMILIES[family].parts(model)[0][1]
    spec = output_of("dnn", deep=width)
    fuse = build_fuse({"alice": spec, "bob": spec}, model, 4)
    rng = np.random.default_rng(1)
    a, b = (rng.random((6, width)).astype(np.float32) for _ in range(2))

    aggregated = fuse([a, b]).numpy()

    # The same logits whatever the split of the aggregate between the parties.
    moved = fuse([a + b - 1.0, np.ones_like(b)]).numpy()
    np.testing.assert_allclose(aggregated, moved, rtol=1e-5, atol=1e-6)
    alone = build_fuse({"alice": spec}, model.model_copy(), 4)
    np.testing.assert_allclose(
        aggregated, alone([(a + b) * scale]).numpy(), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(aggregated, fuse([a, a]).numpy())


CUSTOM_32 = (("out", 32),)


@pytest.mark.parametrize(
    ("label_family", "aggregation", "outputs", "needle"),
    [
        (
            "dnn",
            "sum",
            {"a": output_of("dnn"), "b": OutputSpec("custom", CUSTOM_32)},
            None,
        ),
        ("dnn", "average", {"a": output_of("dnn", 32), "b": deepfm_output(22)}, None),
        (
            "dnn",
            "sum",
            {"a": output_of("dnn", 32), "b": output_of("dnn", 16)},
            "their widths differ: {'a': 32, 'b': 16}",
        ),
        ("deepfm", "sum", {"a": deepfm_output()}, "takes them only side by side"),
        ("dnn", "max", {"a": output_of("dnn")}, "unknown aggregation 'max'"),
    ],
)
def test_the_compatibility_check_covers_the_aggregation(
    label_family, aggregation, outputs, needle
):
    problem = combination_problem(label_family, outputs, aggregation)
    if needle is None:
        assert problem is None
    else:
        assert needle in problem
        assert problem.startswith(("the label party's", "aggregation"))


@pytest.mark.parametrize("family", ["deepfm", "wide_deep", "dnn"])
def test_a_sequence_field_shares_its_items_table_and_adds_its_tokens(family):
    shapes = [
        FeatureShape("history", SEQUENCE, 10, 3, "item"),
        FeatureShape("item", INDEX, 10),
    ]
    base = build_base("bob", shapes, _model(family), 1)
    create_weights(base)

    paths = [v.path for v in base.trainable_variables]
    assert len(paths) == len(set(paths))
    assert base.embedding.rows == 10  # the history has no rows of its own
    (vectors, squares, first), _ = base.embedding(
        {"history": tf.constant([[NO_TOKEN, 2, 3]]), "item": tf.constant([0])}
    )
    rows = base.embedding.field_rows("item")[[2, 3]]
    np.testing.assert_allclose(vectors.numpy()[0], rows.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(squares.numpy()[0, 0], (rows**2).sum(), rtol=1e-6)
    if first is not None:
        expected = base.embedding.field_rows("item", first_order=True)[[2, 3]].sum()
        np.testing.assert_allclose(first.numpy()[0, 0], expected, rtol=1e-6)
    batch = PackedBatch(
        np.array([[NO_TOKEN, NO_TOKEN, 4, 4], [1, 2, 3, 5]], np.int32),
        np.zeros((2, 0), np.float32),
    )
    assert base(unpack(shapes, packed(batch))).shape == (2, base.output_spec.width)


def test_a_bst_base_needs_a_history_that_shares_an_item_table():
    with pytest.raises(ConfigError, match="bst needs a sequence feature that shares"):
        build_base("alice", ALICE, _model("bst"), 1)
    unshared = [*BOB, FeatureShape("history", SEQUENCE, 10, 3)]
    with pytest.raises(ConfigError, match="this party's features"):
        build_base("bob", unshared, _model("bst"), 1)


@pytest.mark.parametrize(
    ("scale", "center", "spread"),
    [("standard", 2.0, np.sqrt(2.0)), ("minmax", 0.0, 4.0), ("none", 0.0, 1.0)],
)
def test_a_numeric_field_is_scaled_by_the_training_rows_alone(scale, center, spread):
    shapes = (
        FeatureShape("item", INDEX, 10),
        FeatureShape("price", NUMERIC, 2, scale=scale),
    )
    # Training rows 0..4 hold 0..4; row 5, outside training, holds 1000.
    numbers = np.array([[0, 0], [1, 0], [2, 1], [3, 0], [4, 0], [1000, 0]], np.float32)
    features = EncodedFeatures(
        shapes,
        PackedBatch(np.zeros((6, 1), np.int32), np.zeros((6, 0), np.uint8), numbers),
    )

    base = build_party_base("bob", features, np.arange(5), _model("deepfm"), 1)

    embedding = base.embedding
    np.testing.assert_allclose(embedding.center.numpy(), [center], rtol=1e-6)
    np.testing.assert_allclose(embedding.spread.numpy(), [spread], rtol=1e-6)
    _, (vectors, _, first) = embedding(
        {"item": tf.constant([0]), "price": tf.constant(numbers[2:3])}
    )
    table = embedding.field_rows("price")
    expected = (2.0 - center) / spread * table[0] + 1.0 * table[1]
    np.testing.assert_allclose(vectors.numpy()[0], expected, rtol=1e-5, atol=1e-7)
    # The scaling is the model's: a checkpoint keeps it, training leaves it.
    step = BaseStep(base, "adam", 0.1)
    kept = {v.path for v in step.state_variables} - {v.path for v in step.variables}
    assert kept == {"bob_base/embedding/center", "bob_base/embedding/spread"}
    step.backward(
        features.take(np.arange(5)), np.ones((5, base.output_spec.width), np.float32)
    )
    np.testing.assert_allclose(embedding.center.numpy(), [center], rtol=1e-6)


@pytest.mark.parametrize("aggregation", ["sum", "average"])
@pytest.mark.parametrize("own", [True, False], ids=["with-own-base", "labels-alone"])
def test_a_fuse_fed_the_peers_sum_trains_as_one_fed_each_peer(aggregation, own):
    """Secure aggregation hands the label party only the feature parties' sum:
    its step, given that sum, makes the updates and gradients of the step given
    each tensor (to float rounding)."""
    model = _model("dnn").model_copy(update={"aggregation": aggregation})
    batches, labels = _planted(64, 4)
    peers = [
        np.random.default_rng(i).random((64, 3)).astype(np.float32) for i in (0, 1)
    ]

    def label_step(summed: bool) -> FuseStep:
        bob = build_base("bob", BOB if own else [], model, 7)
        outputs = {"alice": output_of("dnn", 3), "carol": output_of("dnn", 3)}
        if own:
            outputs["bob"] = bob.output_spec
        fuse = build_fuse(outputs, model, 7)
        return FuseStep(bob, fuse, 2 if own else None, "adam", 0.02, summed=summed)

    each, summed = label_step(False), label_step(True)
    empty = PackedBatch(np.zeros((64, 0), np.int32), np.zeros((64, 0), np.float32))
    mine = batches[1] if own else empty
    *_, grads_each = each.train(mine, peers, labels)
    *_, [grad_sum] = summed.train(mine, [peers[0] + peers[1]], labels)
    for grad in grads_each:
        np.testing.assert_allclose(grad.numpy(), grad_sum.numpy(), atol=1e-6)
    for ours, theirs in zip(summed.variables, each.variables, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        summed.predict(mine, [peers[0] + peers[1]]).numpy(),
        each.predict(mine, peers).numpy(),
        atol=1e-6,
    )
