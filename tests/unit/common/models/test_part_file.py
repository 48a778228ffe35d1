"""An exported part's Keras file: ``keras.models.load_model`` gives back a
model over raw column values whose outputs are the job's, for every family
the file can carry."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.features import encode_features
from common.metrics import Task
from common.models.build import build_fuse, build_party_base
from common.models.part_file import PART_FILE, PartModel, save_part_file
from common.models.registry import FAMILIES
from common.models.serving import BaseServing, FuseServing, hidden_input
from common.models.steps import BaseStep, FuseStep
from tests.unit.common.models.test_families import _alice_model, _model
from tests.unit.common.models.test_serving import (
    ALICE,
    BOB,
    HISTORY,
    ROWS,
    _columns,
    _fitted,
    _frames,
)


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"custom"}))
def test_a_loaded_keras_file_gives_the_jobs_outputs(family, tmp_path):
    alice_frame, bob_frame = _frames(5)
    alice_features = _fitted(ALICE, alice_frame)
    bob_features = _fitted(BOB + ((HISTORY,) if family == "bst" else ()), bob_frame)
    train = np.arange(ROWS)
    model, alice_model = _model(family), _alice_model(family)
    tasks = [Task("like")]
    if FAMILIES[family].multi_task:
        model = dataclasses.replace(model, tasks=2)
        tasks = [Task("like"), Task("love", 0.5)]
    alice_encoded = encode_features(alice_frame, alice_features)
    bob_encoded = encode_features(bob_frame, bob_features)
    alice = build_party_base("alice", alice_encoded, train, alice_model, 11)
    bob = build_party_base("bob", bob_encoded, train, model, 11)
    fuse = build_fuse({"alice": alice.output_spec, "bob": bob.output_spec}, model, 11)
    hidden = BaseStep(alice, "adam", 0.01, clip_norm=0.5).forward(
        alice_encoded.take(train)
    )
    step = FuseStep(bob, fuse, 1, "adam", 0.01, tasks)
    scores = step.predict(bob_encoded.take(train), [hidden.numpy()]).numpy()

    feature_part = BaseServing(alice_features, alice, 0.5, alice_model)
    label_part = FuseServing(
        bob_features, bob, fuse, 1, [("alice", hidden.shape[1])], tasks, model=model
    )
    save_part_file("alice", feature_part, alice_model, tmp_path / "alice.keras")
    save_part_file("bob", label_part, model, tmp_path / "bob.keras")
    keras.backend.clear_session()
    alice_file = keras.models.load_model(tmp_path / "alice.keras")
    bob_file = keras.models.load_model(tmp_path / "bob.keras")

    assert isinstance(alice_file, PartModel) and PART_FILE.endswith(".keras")
    assert bob_file.input_names[-1] == hidden_input("alice")
    served = alice_file(_columns(feature_part, alice_frame)).numpy()
    # Run op by op, not as one graph: equal to the last bit or one ulp.
    np.testing.assert_allclose(served, hidden.numpy(), rtol=1e-6, atol=1e-7)
    inputs = {
        **_columns(label_part, bob_frame),
        hidden_input("alice"): tf.constant(served),
    }
    got = bob_file(inputs).numpy()
    np.testing.assert_allclose(got, scores, rtol=1e-6, atol=1e-7)
