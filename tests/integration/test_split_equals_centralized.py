"""Split = centralized: the split job over real gRPC makes the same updates as the
composed model trained in one process on the same batches.

The parties' files hold different row sets in different orders: the split job
aligns them privately (PSI), the centralized model by a plain join."""

from __future__ import annotations

import numpy as np

from baseline.centralized import CentralizedTrainer, load_parties
from common.config import load_job_config
from coordinator.client import PartyClient
from coordinator.handshake import handshake
from coordinator.windows import Window, run_window
from tests.support import running_parties

STEPS = 24


def _split_weights(parties: dict, job_id: str) -> list[np.ndarray]:
    alice = parties["alice"].party.job(job_id).step
    bob = parties["bob"].party.job(job_id).step
    models = [alice.model, bob.base, bob.fuse]
    return [v.numpy().copy() for m in models for v in m.trainable_variables]


def test_split_weights_equal_centralized_weights_after_two_windows(
    misaligned_files, misaligned_data
):
    party_files = misaligned_files
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
    assert prepared.train_rows + prepared.validation_rows == misaligned_data[1]

    central = CentralizedTrainer(
        config, load_parties([party_files.alice, party_files.bob])
    )
    central_initial = [v.numpy() for v in central.step.variables]
    central.train_epoch(0, max_steps=STEPS)
    centralized = [v.numpy() for v in central.step.variables]

    assert len(split) == len(centralized) == len(initial)
    for start, same in zip(initial, central_initial, strict=True):
        np.testing.assert_array_equal(start, same)
    moved = max(
        float(np.max(np.abs(a - b))) for a, b in zip(split, initial, strict=True)
    )
    assert moved > 1e-3, "training did not change the weights"
    for got, want in zip(split, centralized, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
