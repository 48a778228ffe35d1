"""Unit tests of splitrec.models.serving: an exported part, loaded back with
``tf.saved_model.load``, gives the job's outputs for the same raw rows, for
every family."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from splitrec.common.metrics import Task
from splitrec.config.features import FeatureConfig
from splitrec.models.build import build_fuse, build_party_base
from splitrec.models.features import encode_features, fit_vocabulary
from splitrec.models.registry import FAMILIES
from splitrec.models.serving import (
    SIGNATURE,
    SUMMED,
    BaseServing,
    FuseServing,
    hidden_input,
    input_names,
    save_serving,
)
from splitrec.models.steps import BaseStep, FuseStep
from tests.unit.common.models.test_families import _alice_model, _model

ROWS = 48
ALICE = (
    FeatureConfig("user", "UserID", "hashed", bins=23),
    FeatureConfig("gender", "Gender", "vocabulary", vocabulary=("F", "M")),
    FeatureConfig("zip", "Zip-code", "from_data"),
    FeatureConfig("age", "Age", "numeric", indicator=True),
)
BOB = (
    FeatureConfig("item", "MovieID", "from_data"),
    FeatureConfig("genres", "Genres", "multi_hot", vocabulary=("A", "B", "C")),
)
HISTORY = FeatureConfig("history", "History", "sequence", shares="item", max_length=3)


def _frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    alice = pd.DataFrame(
        {
            "UserID": [str(u) for u in rng.integers(0, 50, ROWS)],
            "Gender": rng.choice(["F", "M", ""], ROWS),
            "Zip-code": rng.choice(["1", "22", "x-3"], ROWS),
            "Age": rng.choice(["18", "", "35.5", "?", "56"], ROWS),
        }
    )
    movies = [str(m) for m in rng.integers(0, 12, ROWS)]
    bob = pd.DataFrame(
        {
            "MovieID": movies,
            "Genres": rng.choice(["A B", "C", "", "B D"], ROWS),
            "History": [
                " ".join(rng.choice(movies, rng.integers(0, 5))) for _ in movies
            ],
        }
    )
    return alice, bob


def _fitted(features: tuple[FeatureConfig, ...], frame: pd.DataFrame) -> tuple:
    return tuple(fit_vocabulary(f, frame[f.column].unique().tolist()) for f in features)


def _columns(serving: BaseServing, frame: pd.DataFrame) -> dict[str, tf.Tensor]:
    return {
        name: tf.constant(frame[column].tolist())
        for column, name in serving.inputs.items()
    }


@dataclasses.dataclass
class TrainedParts:
    """A two-party job of one family, its outputs on the raw rows and its
    parts over raw columns."""

    frames: tuple[pd.DataFrame, pd.DataFrame]
    hidden: np.ndarray
    scores: np.ndarray
    feature_part: BaseServing
    label_part: FuseServing
    tasks: list


def trained_parts(family: str, seed: int) -> TrainedParts:
    alice_frame, bob_frame = _frames(seed)
    alice_features = _fitted(ALICE, alice_frame)
    bob_features = _fitted(BOB + ((HISTORY,) if family == "bst" else ()), bob_frame)
    train = np.arange(ROWS)
    model, alice_model = _model(family), _alice_model(family)
    tasks = [Task("like")]
    if FAMILIES[family].multi_task:
        model = model.model_copy(update={"tasks": 2})
        tasks = [Task("like"), Task("love", 0.5)]
    alice_encoded = encode_features(alice_frame, alice_features)
    bob_encoded = encode_features(bob_frame, bob_features)
    alice = build_party_base("alice", alice_encoded, train, alice_model, 7)
    bob = build_party_base("bob", bob_encoded, train, model, 7)
    fuse = build_fuse({"alice": alice.output_spec, "bob": bob.output_spec}, model, 7)
    base_step = BaseStep(alice, "adam", 0.01, clip_norm=0.5)
    fuse_step = FuseStep(bob, fuse, 1, "adam", 0.01, tasks)
    hidden = base_step.forward(alice_encoded.take(train)).numpy()
    scores = fuse_step.predict(bob_encoded.take(train), [hidden]).numpy()
    return TrainedParts(
        (alice_frame, bob_frame),
        hidden,
        scores,
        BaseServing(alice_features, alice, 0.5, alice_model),
        FuseServing(
            bob_features, bob, fuse, 1, [("alice", hidden.shape[1])], tasks, model=model
        ),
        tasks,
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_loaded_export_gives_the_jobs_outputs(family, tmp_path):
    trained = trained_parts(family, 3)
    alice_frame, bob_frame = trained.frames
    hidden, scores, tasks = trained.hidden, trained.scores, trained.tasks
    feature_part, label_part = trained.feature_part, trained.label_part
    save_serving(feature_part, tmp_path / "alice")
    save_serving(label_part, tmp_path / "bob")
    alice_loaded = tf.saved_model.load(str(tmp_path / "alice"))
    bob_loaded = tf.saved_model.load(str(tmp_path / "bob"))

    served_hidden = alice_loaded.signatures[SIGNATURE](
        **_columns(feature_part, alice_frame)
    )["hidden"].numpy()
    np.testing.assert_array_equal(served_hidden, hidden)
    served = bob_loaded.signatures[SIGNATURE](
        **_columns(label_part, bob_frame), **{hidden_input("alice"): served_hidden}
    )["scores"].numpy()
    np.testing.assert_array_equal(served, scores)
    assert served.shape == ((ROWS, 2) if len(tasks) > 1 else (ROWS,))


def test_input_names_are_safe_and_distinct():
    names = input_names(["Zip-code", "Zip_code", "zip code", "1st", "", "ok"])
    assert names == {
        "Zip-code": "Zip_code",
        "Zip_code": "Zip_code_2",
        "zip code": "zip_code_3",
        "1st": "c_1st",
        "": "column",
        "ok": "ok",
    }


def test_a_securely_summed_label_part_takes_the_sum(tmp_path):
    _, bob_frame = _frames(4)
    features = _fitted(BOB, bob_frame)
    encoded = encode_features(bob_frame, features)
    model = _model("dnn").model_copy(update={"aggregation": "sum"})
    bob = build_party_base("bob", encoded, np.arange(ROWS), model, 3)
    width = bob.output_spec.width
    outputs = {"alice": bob.output_spec, "carol": bob.output_spec}
    fuse = build_fuse({**outputs, "bob": bob.output_spec}, model, 3)
    step = FuseStep(bob, fuse, 2, "adam", 0.01, summed=True)
    total = np.random.default_rng(0).normal(size=(ROWS, width)).astype(np.float32)
    scores = step.predict(encoded.take(np.arange(ROWS)), [total]).numpy()

    part = FuseServing(features, bob, fuse, 2, [(SUMMED, width)], summed=True)
    save_serving(part, tmp_path / "bob")
    served = tf.saved_model.load(str(tmp_path / "bob")).signatures[SIGNATURE](
        **_columns(part, bob_frame), hidden_sum=tf.constant(total)
    )["scores"]
    np.testing.assert_array_equal(served.numpy(), scores)
