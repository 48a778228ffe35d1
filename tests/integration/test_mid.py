"""MID over real gRPC: a job with the bottleneck at alice trains, its
prediction pass and its export both run on the code's mean (the exported parts
chained on raw rows give the job's own scores), and alice's checkpoints hold
the bottleneck. Sampling at training only is checked on the step itself
(``tests/unit/common/privacy/test_mid.py``); recovery with MID in
``test_recovery``."""

from __future__ import annotations

import numpy as np
import pytest

from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.job import JobDriver
from tests.exports import check_exports
from tests.support import running_parties

pytestmark = pytest.mark.slow

JOB = "deepfm-ml1m"


def test_a_job_with_mid_trains_and_serves_the_codes_mean(party_files):
    party_files.edit(
        "job",
        epochs=2,
        export="auto",
        privacy={"mid": {"weight": 0.01, "dim": 8}},
    )
    with running_parties(party_files):
        result = JobDriver(load_job_config(party_files.job)).run()
    assert result.records[-1].val_auc > 0.6
    bob = load_party_config(party_files.bob).output_dir / JOB
    check_exports(party_files, JOB, "epoch-2", bob / "predictions-validation.csv")

    alice = load_party_config(party_files.alice).output_dir / JOB
    newest = sorted((alice / "checkpoints").glob("checkpoint-*.npz"))[-1]
    with np.load(newest) as stored:
        kept = [k for k in stored.files if k.startswith("model/mid/")]
    assert len(kept) == 4, kept  # the encoder's and the decoder's kernel and bias


def test_mid_on_every_release_samples_the_validation_passs_code(party_files):
    """With ``releases: all`` the prediction pass sends sampled codes: its
    scores differ from those of the exported parts (the code's mean), row by
    row, and the job still learns."""
    party_files.edit(
        "job",
        epochs=2,
        export="auto",
        privacy={"mid": {"weight": 0.01, "dim": 8, "releases": "all"}},
    )
    with running_parties(party_files):
        result = JobDriver(load_job_config(party_files.job)).run()
    assert result.records[-1].val_auc > 0.6
    bob = load_party_config(party_files.bob).output_dir / JOB
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        check_exports(party_files, JOB, "epoch-2", bob / "predictions-validation.csv")
