"""BST learns from the sequence: on generated data whose ratings depend on the
movie each user rated just before, BST (history and target movie at bob) beats
DeepFM on the reference columns (no history) by a clear margin."""

from __future__ import annotations

from splitrec.baseline.centralized import CentralizedTrainer, load_parties
from splitrec.config.job import load_job_config
from tests.support import write_configs


def _val_auc(folder, data, layout: str) -> float:
    files = write_configs(folder, data, layout=layout)
    files.edit("job", epochs=2)
    trainer = CentralizedTrainer(
        load_job_config(files.job), load_parties([files.alice, files.bob])
    )
    return trainer.fit()[-1].val_auc


def test_bst_beats_deepfm_on_sequence_planted_data(sequence_data, tmp_path):
    bst = _val_auc(tmp_path / "bst", sequence_data, "bst")
    deepfm = _val_auc(tmp_path / "deepfm", sequence_data, "reference")

    assert bst > deepfm + 0.03, f"BST {bst:.4f}, DeepFM {deepfm:.4f}"
