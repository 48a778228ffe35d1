"""An exported part's Keras file: ``keras.models.load_model`` gives back a
model over raw column values whose outputs are the job's, for every family
the file can carry."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from splitrec.config.model import ModelConfig
from splitrec.models import part_file
from splitrec.models.part_file import PART_FILE, PartModel, save_part_file
from splitrec.models.registry import FAMILIES
from splitrec.models.serving import hidden_input
from tests.unit.common.models.test_serving import _columns, trained_parts


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"custom"}))
def test_a_loaded_keras_file_gives_the_jobs_outputs(family, tmp_path):
    trained = trained_parts(family, 5)
    alice_frame, bob_frame = trained.frames
    hidden, scores = trained.hidden, trained.scores
    feature_part, label_part = trained.feature_part, trained.label_part
    alice_model, model = feature_part.model, label_part.model
    save_part_file("alice", feature_part, alice_model, tmp_path / "alice.keras")
    save_part_file("bob", label_part, model, tmp_path / "bob.keras")
    keras.backend.clear_session()
    alice_file = keras.models.load_model(tmp_path / "alice.keras")
    bob_file = keras.models.load_model(tmp_path / "bob.keras")

    assert isinstance(alice_file, PartModel) and PART_FILE.endswith(".keras")
    assert bob_file.input_names[-1] == hidden_input("alice")
    served = alice_file(_columns(feature_part, alice_frame)).numpy()
    # Run op by op, not as one graph: equal to the last bit or one ulp.
    np.testing.assert_allclose(served, hidden, rtol=1e-6, atol=1e-7)
    inputs = {
        **_columns(label_part, bob_frame),
        hidden_input("alice"): tf.constant(served),
    }
    got = bob_file(inputs).numpy()
    np.testing.assert_allclose(got, scores, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "model",
    [
        ModelConfig(),
        ModelConfig(tasks=1),
        ModelConfig(family="dnn", deep_units=(16,)),
        ModelConfig(family="mmoe", tasks=2),
    ],
    ids=["feature-party", "label-party", "dnn-feature-party", "mmoe-label-party"],
)
def test_a_parts_model_config_reads_back_as_written(model):
    """A feature party's part holds no fuse: its empty fuse_units read back."""
    written = json.loads(json.dumps(part_file._model_dict(model)))
    assert part_file._model_from_dict(written) == model
