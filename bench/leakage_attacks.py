"""The attacks of ``splitrec.bench.leakage`` that learn from a few known rows, run on
what one split job left in each party's output folder.

Each attack works only from what its attacker holds, plus the few rows whose
answer it is assumed to know; the harness (which alone reads every party's
files) supplies those rows and scores the guesses:

- **feature inference** (bob attacks alice's features): the tensors bob's
  probe recorded as he received them in the last epoch (``ReceivedProbe``), of
  the training forwards and of the validation pass, each attacked on its own,
  and alice's features of ``known`` of those rows;
- **model completion** (alice attacks bob's labels): alice's trained base,
  rebuilt from her own config and last checkpoint, on her own rows, and bob's
  labels of ``known`` of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from splitrec.config.party import load_party_config
from splitrec.models.build import build_party_base
from splitrec.models.steps import create_weights, packed, unpack
from splitrec.party_server.checkpoints import ModelState
from splitrec.party_server.data_slice import load_data_slice
from splitrec.party_server.leakage_probe import RECEIVED, read_received
from splitrec.privacy.inference import (
    FeatureInference,
    feature_inference,
    model_completion_auc,
)

# alice's categorical features the label party tries to read back, and the
# column that names the entity (user) a row is about.
ATTACKED_FEATURES = ("Gender", "Age", "Occupation")
ENTITY = "UserID"
# Rows of alice's the model-completion attack scores (a sample beyond this).
COMPLETION_ROWS = 100_000
# Rows per forward pass when alice's base is run on her rows.
_BATCH = 8192


def features_by_id(alice_csv: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """alice's raw feature values per ID (read by the harness only)."""
    frame = pd.read_csv(
        alice_csv, usecols=["ID", *columns], dtype=str, keep_default_na=False
    )
    return frame.set_index("ID")


def received_tensor(
    received: dict[str, np.ndarray], party: str
) -> tuple[str, np.ndarray]:
    """The tensor the label party received that carries ``party``'s rows, and
    its name in the probe: the party's own, or the one sum when that is all it
    received (secure aggregation)."""
    names = [k[len(RECEIVED) :] for k in received if k.startswith(RECEIVED)]
    if party in names:
        return party, received[RECEIVED + party]
    if len(names) == 1:
        return names[0], received[RECEIVED + names[0]]
    raise ValueError(f"the probe recorded tensors of {names}, none of {party!r}")


def feature_inference_attack(
    probe: Path,
    features: pd.DataFrame,
    known: int,
    seed: int,
    release: str = "train",
    party: str = "alice",
    entity: str | None = ENTITY,
    columns: slice | None = None,
) -> tuple[str, dict[str, FeatureInference]]:
    """The feature-inference attack on every column of ``features`` (raw
    values by ID) but ``entity`` from the tensors of one pass (``release``)
    in the label party's probe folder, and the name of the tensor it read
    (``party``, or ``sum`` under secure aggregation). With ``entity``, the
    attack is scored on the rows of entities that none of the known rows is
    about (see ``FeatureInference``). ``columns``: the decoder reads only
    these columns of the tensor (one part of it)."""
    received = read_received(probe, release)
    name, tensor = received_tensor(received, party)
    if columns is not None:
        tensor = tensor[:, columns]
    truth = features.reindex(received["id"])
    if truth.isna().to_numpy().any():
        raise ValueError(f"{probe}: tensors of IDs that {party}'s file does not hold")
    targets = {
        name: truth[name].to_numpy() for name in features.columns if name != entity
    }
    groups = truth[entity].to_numpy() if entity else None
    return name, feature_inference(tensor, targets, known, seed, groups)


def base_outputs(
    party_config: Path, job: str, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """IDs and outputs of a party's trained base on (a sample of ``limit`` of)
    its own rows: the base built from its config, the weights of its last
    checkpoint of ``job``. What the party itself can compute after training."""
    config = load_party_config(party_config)
    data = load_data_slice(config)
    folder = config.output_dir / job / "checkpoints"
    checkpoints = sorted(folder.glob("checkpoint-*.npz"))
    if not checkpoints:
        raise FileNotFoundError(f"{folder} holds no checkpoint of job {job}")
    with np.load(checkpoints[-1]) as stored:
        # The base's weights only: the optimizer state, a predicting step's
        # last update and MID's bottleneck (between the base and what is sent)
        # do not shape the base's outputs.
        arrays = {
            k: stored[k]
            for k in stored.files
            if not k.startswith(("optimizer/", "compensation/", "model/mid/"))
        }
    rows = np.arange(data.num_rows)
    base = build_party_base(config.party, data.features, rows, config.model, 0)
    create_weights(base)
    state = ModelState(base.output_spec.structure, list(base.variables), [])
    state.load(arrays, str(checkpoints[-1]))
    if rows.size > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    outputs = [
        base(
            unpack(base.shapes, packed(data.features.take(rows[i : i + _BATCH]))),
            training=False,
        ).numpy()
        for i in range(0, rows.size, _BATCH)
    ]
    return data.ids[rows], np.concatenate(outputs)


def model_completion_attack(
    party_config: Path,
    job: str,
    labels: pd.Series,
    known: int,
    seed: int,
    repeats: int = 10,
) -> float:
    """The model-completion attack's AUC: a head on the party's frozen trained
    base, trained on ``known`` labelled rows, scored on the rest."""
    ids, outputs = base_outputs(party_config, job, COMPLETION_ROWS, seed)
    truth = labels.reindex(ids).to_numpy()
    if np.isnan(truth.astype(float)).any():
        raise ValueError("the party holds IDs that the label file does not")
    return model_completion_auc(outputs, truth, known, seed, repeats)
