"""The parts a job exported, checked against its own scores: each party wrote
its part (SavedModel and Keras file), and chained on the raw CSV rows of the
validation split the loaded parts give the scores the job's prediction pass
wrote."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from splitrec.config.party import load_party_config
from splitrec.models.part_file import PART_FILE


def _raw_rows(config, ids: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(config.data.path, dtype=str, keep_default_na=False)
    return frame.set_index(config.data.id_column).loc[ids]


def check_exports(files, job: str, version: str, scores: Path, epoch: int = 2) -> None:
    """Each party wrote its own part; chained on the raw CSV rows of the
    validation split, the loaded parts give the job's scores."""
    manifest = json.loads((files.folder / "runs" / job / "manifest.json").read_text())
    assert manifest["exports"][version]["epoch"] == epoch
    expected = pd.read_csv(scores, dtype={"ID": str})
    ids = expected["ID"].tolist()
    parts = {}
    for name in ("alice", "bob"):
        config = load_party_config(getattr(files, name))
        folder = config.output_dir / job / "model" / version
        described = json.loads((folder / "model.json").read_text())
        assert described["party"] == name
        assert (
            described["model_digest"] == manifest["exports"][version]["parties"][name]
        )
        assert described["epoch"] == epoch and described["metrics"]["auc"] > 0.6
        assert {p.name for p in folder.iterdir()} >= {"saved_model", "base.weights.h5"}
        loaded = tf.saved_model.load(str(folder / "saved_model"))
        raw = _raw_rows(config, ids)
        columns = {
            key: tf.constant(raw[column].tolist())
            for column, key in described["inputs"].items()
        }
        assert described["keras_file"] == PART_FILE
        keras_file = keras.models.load_model(folder / PART_FILE)
        parts[name] = (loaded.signatures["serving_default"], columns, keras_file)
    serve, columns, alice_file = parts["alice"]
    hidden = serve(**columns)["hidden"]
    serve, columns, bob_file = parts["bob"]
    served = serve(**columns, hidden_alice=hidden)["scores"].numpy()
    np.testing.assert_allclose(served, expected["score"].to_numpy(), atol=1.5e-6)
    # The Keras files, preprocessing included, give the same scores.
    from_file = bob_file({**columns, "hidden_alice": alice_file(parts["alice"][1])})
    np.testing.assert_allclose(from_file.numpy(), served, atol=1.5e-6)
