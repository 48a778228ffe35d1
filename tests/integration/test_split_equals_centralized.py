"""Split = centralized: the split job over real gRPC makes the same updates as the
composed model trained in one process on the same batches.

The parties' files hold different row sets in different orders: the split job
aligns them privately (PSI), the centralized model by a plain join."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.baseline.centralized import CentralizedTrainer, load_parties
from splitrec.config.job import load_job_config
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.handshake import handshake
from splitrec.coordinator.windows import Window, run_window
from tests.support import running_parties, write_configs

STEPS = 24


def _split_weights(parties: dict, job_id: str) -> dict[str, np.ndarray]:
    """Every party's model variables (the label party's base and fuse)."""
    steps = [running.party.job(job_id).step for running in parties.values()]
    return {v.path: v.numpy().copy() for step in steps for v in step.state_variables}


@pytest.mark.parametrize(
    ("family", "aggregation", "variant"),
    [
        ("deepfm", "concat", ""),
        ("wide_deep", "concat", ""),
        ("dnn", "concat", ""),
        ("custom", "concat", ""),
        ("dnn", "sum", ""),
        ("custom", "average", ""),
        ("deepfm", "concat", "labels-alone"),
        ("deepfm", "concat", "numbers"),
    ],
)
def test_split_weights_equal_centralized_weights_after_two_windows(
    misaligned_files, misaligned_data, family, aggregation, variant
):
    """``labels-alone``: bob holds the labels and no feature; the fuse takes
    alice's output alone. ``numbers``: Age (alice) and Timestamp (bob) are
    numeric features, scaled by each party's own training rows."""
    party_files = misaligned_files
    party_files.set_family(family, aggregation)
    if variant == "labels-alone":
        party_files.edit("bob", features=[])
    if variant == "numbers":
        _with_numbers(party_files)
    assert_split_equals_centralized(
        party_files, misaligned_data[1], variant == "labels-alone"
    )


def _with_numbers(party_files) -> None:
    alice = party_files.read("alice")["features"]
    alice = [f for f in alice if f["name"] != "Age"]
    alice.append(
        {"name": "Age", "type": "numeric", "indicator": True, "scale": "minmax"}
    )
    party_files.edit("alice", features=alice)
    bob = party_files.read("bob")["features"]
    bob.append({"name": "Timestamp", "type": "numeric"})
    party_files.edit("bob", features=bob)


def assert_split_equals_centralized(
    party_files, rows: int, labels_alone: bool = False
) -> None:
    """Two windows of the split job over gRPC leave every variable (by path)
    where the centralized model's first steps on the same batches do."""
    party_files.edit("job", batch_size=64, epochs=2)
    with running_parties(party_files) as parties:
        config = load_job_config(party_files.job)
        clients = {p.name: PartyClient(p.name, p.address, 60.0) for p in config.parties}
        prepared = handshake(config, clients)
        initial = _split_weights(parties, config.job)
        for first, count in ((0, 10), (10, STEPS - 10)):
            window = Window(config.job, 0, first, count, 5)
            last = run_window(clients, "bob", window, lambda _: None, 60.0)["bob"]
            assert last.next_step == first + count
        split = _split_weights(parties, config.job)
        for client in clients.values():
            client.close()
    assert prepared.steps_per_epoch > STEPS
    assert prepared.train_rows + prepared.validation_rows == rows

    central = CentralizedTrainer(
        config, load_parties([party_files.alice, party_files.bob])
    )
    central_initial = {v.path: v.numpy() for v in central.step.state_variables}
    central.train_epoch(0, max_steps=STEPS)
    centralized = {v.path: v.numpy() for v in central.step.state_variables}

    # The same variables, compared by path (``alice_base/embedding/embeddings``).
    assert set(split) == set(centralized) == set(initial) == set(central_initial)
    assert any(path.startswith("fuse/") for path in split)
    assert any(path.startswith("bob_base/") for path in split) != labels_alone
    for path, start in initial.items():
        np.testing.assert_array_equal(start, central_initial[path], err_msg=path)
    moved = max(float(np.max(np.abs(split[p] - initial[p]))) for p in split)
    assert moved > 1e-3, "training did not change the weights"
    for path, got in split.items():
        np.testing.assert_allclose(
            got, centralized[path], rtol=1e-4, atol=1e-5, err_msg=path
        )


def test_split_bst_equals_centralized_bst(sequence_data, tmp_path):
    """BST (bob: a transformer over the history and the target movie, sharing
    one table) beside a DNN base at alice."""
    party_files = write_configs(tmp_path, sequence_data, layout="bst")
    assert_split_equals_centralized(party_files, 100_000)


def test_split_census_equals_centralized_census(census_data, tmp_path):
    """alice holds the labels (income = >50K, a text rule) and numbers scaled by
    her training rows; bob's age is a number too."""
    party_files = write_configs(tmp_path, census_data, layout="census")
    assert_split_equals_centralized(party_files, 4000)


def test_split_two_tasks_equals_centralized_two_tasks(misaligned_data, tmp_path):
    """MMoE predicting like and love (two labels from bob's Rating): shared
    experts, a gate and a tower per task, the loss the tasks' weighted sum."""
    party_files = write_configs(tmp_path, misaligned_data[0], layout="two-tasks")
    labels = party_files.read("bob")["labels"]
    labels[1]["weight"] = 0.5  # unequal weights reach both sides alike
    party_files.edit("bob", labels=labels)
    assert_split_equals_centralized(party_files, misaligned_data[1])
