"""Secure aggregation end to end: three in-process parties (alice and carol
feature parties, bob the label party) on loopback."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from splitrec.common.errors import JobFailedError
from splitrec.common.names import scoring_run_name
from splitrec.config.job import load_job_config
from splitrec.coordinator.job import JobDriver
from splitrec.coordinator.local import start_local_parties, start_party
from splitrec.party_server.feature_job import FeatureJob
from splitrec.party_server.label_job import LabelJob
from splitrec.privacy.secure_aggregation import fixed_point
from tests.divergence import RunState, assert_same, run_state
from tests.support import (
    ROOT,
    alive,
    descendants,
    party_status,
    running_parties,
    start_coordinator,
    three_party_configs,
    wait_for_training_step,
)

JOB = "secure-ml1m"
PARTIES = ("alice", "carol", "bob")
SECURE = {"method": "sum", "secure": True}


def run(files):
    with running_parties(files):
        return JobDriver(load_job_config(files.job)).run()


def _configs(folder: Path, data: Path, certs=None, aggregation=None, **job):
    """The three-party job: one epoch of batch 256, scores of the validation
    rows."""
    return three_party_configs(
        folder,
        data,
        certs,
        aggregation,
        epochs=1,
        batch_size=256,
        predict="validation",
        **job,
    )


class Wire:
    """What bob's job receives (masked values by step and sender) and what alice
    and carol computed (plain hidden tensors by step and party)."""

    def __init__(self) -> None:
        self.received: dict[tuple, dict[str, np.ndarray]] = defaultdict(dict)
        self.plain: dict[tuple, dict[str, np.ndarray]] = defaultdict(dict)
        self.fields: set[str] = set()
        self._lock = threading.Lock()

    def record(self, monkeypatch: pytest.MonkeyPatch) -> None:
        accept, forward_message = LabelJob.accept_forward, FeatureJob._forward_message
        wire = self

        def recording_accept(self, stream, hello, forward):
            with wire._lock:
                wire.fields.update(f.name for f, _ in forward.ListFields())
                key = (forward.key.phase, forward.key.epoch, forward.key.step)
                values = np.frombuffer(forward.masked.values.data, "<u8")
                wire.received[(*key, hello.split)][stream.sender] = values.copy()
            return accept(self, stream, hello, forward)

        def recording_forward(self, phase, epoch, step, hidden, split=""):
            message = forward_message(self, phase, epoch, step, hidden, split)
            with wire._lock:
                code = {"": 0, "train": 1, "validation": 2, "all": 3}[split]
                wire.plain[(phase, epoch, step, code)][self._party] = np.array(hidden)
            return message

        monkeypatch.setattr(LabelJob, "accept_forward", recording_accept)
        monkeypatch.setattr(FeatureJob, "_forward_message", recording_forward)

    def joined(self, party: str) -> tuple[np.ndarray, np.ndarray]:
        """Everything ``party`` sent bob, and its plain tensors, in step order."""
        steps = sorted(self.received)
        masked = np.concatenate([self.received[k][party] for k in steps])
        plain = np.concatenate([self.plain[k][party].ravel() for k in steps])
        return masked, plain


def _check_wire(wire: Wire) -> None:
    """No single party's tensor can be read from what bob received; their
    sum is exact."""
    assert wire.fields == {"key", "masked"}  # never a plain or compressed tensor
    assert set(wire.received) == set(wire.plain) and len(wire.received) > 20
    for step, sent in wire.received.items():
        total = fixed_point.decode(fixed_point.add(list(sent.values())))
        exact = wire.plain[step]["alice"].astype(np.float64) + wire.plain[step]["carol"]
        assert np.abs(total.ravel() - exact.ravel()).max() <= 1e-6
    for party in ("alice", "carol"):
        values, truth = wire.joined(party)
        # Every bit of the payload is a fair coin, whatever the plain value.
        bits = (values[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
        assert np.abs(bits.mean(axis=0) - 0.5).max() < 0.02
        signed = values.view(np.int64).astype(np.float64)
        assert abs(np.corrcoef(signed, truth)[0, 1]) < 0.02
        # The plain tensor is not in the payload at any fixed-point scale, nor
        # as float32 bytes.
        close = [
            np.mean(np.isclose(signed / 2.0**scale, truth, rtol=1e-3, atol=1e-6))
            for scale in range(64)
        ]
        assert max(close) < 0.01
        as_float = values.view(np.uint32).view(np.float32)[::2]
        assert np.mean(np.isclose(as_float, truth[: as_float.size], 1e-3, 0)) < 0.01


def test_a_secure_job_hides_each_tensor_and_learns_what_the_plain_sum_learns(
    three_party_data, certs, tmp_path, monkeypatch
):
    """The secure run (mutual TLS: signed key shares) records every message bob
    receives; the same job with the plain sum is its yardstick."""
    wire = Wire()
    wire.record(monkeypatch)
    secure = run(_configs(tmp_path / "secure", three_party_data, certs))
    monkeypatch.undo()
    _check_wire(wire)
    plain = run(_configs(tmp_path / "plain", three_party_data, None, "sum"))

    [mine], [theirs] = secure.records, plain.records
    # The secure sum is exact (fixed point), the plain one float32: their last
    # bits differ, Adam carries such differences along, and the two runs end
    # close, not equal.
    assert abs(mine.val_auc - theirs.val_auc) < 0.001
    assert mine.val_loss == pytest.approx(theirs.val_loss, abs=1e-3)
    assert mine.train_loss == pytest.approx(theirs.train_loss, abs=1e-3)
    assert theirs.val_auc > 0.55
    for mode in ("secure", "plain"):
        runs = tmp_path / mode / "runs"
        # bob wrote scores of the validation rows, as for any job.
        scores = runs / "bob" / JOB / "predictions-validation.csv"
        assert scores.read_text().startswith("ID,score\n")
        # The fuse takes one 32-wide input: the three base outputs' sum.
        newest = sorted((runs / "bob" / JOB / "checkpoints").glob("*.npz"))[-1]
        with np.load(newest) as saved:
            [kernel] = [k for k in saved.files if k.startswith("model/fuse/fuse_0/k")]
            assert saved[kernel].shape[0] == 32
            assert any(k.startswith("model/bob_base/") for k in saved.files)
        assert sorted((runs / "carol" / JOB / "checkpoints").glob("*.npz"))
    # Each feature party keeps its job key to itself, readable by it alone.
    key = tmp_path / "secure" / "runs" / "alice" / JOB / "secure-aggregation.key"
    assert key.stat().st_mode & 0o077 == 0
    assert not (tmp_path / "plain" / "runs" / "alice" / JOB / key.name).exists()


def test_a_job_with_compression_is_refused_at_the_handshake(three_party_data, tmp_path):
    files = _configs(
        tmp_path,
        three_party_data,
        aggregation={"method": "average", "secure": True},
        compression={"method": "int8"},
    )
    with pytest.raises(JobFailedError, match="masked tensors is meaningless"):
        run(files)


# A kill -9 of a feature party mid-epoch: the job recovers from the newest
# checkpoint and ends bit for bit where an uninterrupted secure run ends.

RECOVERY_BATCH = 256


def _recovery_configs(folder: Path, data: Path):
    return three_party_configs(
        folder,
        data,
        epochs=1,
        batch_size=RECOVERY_BATCH,
        predict="none",
        report_every=5,
        checkpoint={"every_steps": 20, "keep": 100},
        recovery={"max_attempts": 3, "timeout": 120},
    )


def _started(files) -> dict:
    return start_local_parties(files, files.folder / "logs")


def _finished(files, job) -> RunState:
    _, err = job.communicate(timeout=300)
    (files.folder / "logs" / "coordinator.log").write_text(err)
    assert job.returncode == 0, err[-3000:]
    return run_state(files.folder, JOB, PARTIES)


@pytest.fixture(scope="module")
def secure_reference(three_party_data, tmp_path_factory) -> RunState:
    """The uninterrupted secure run."""
    files = _recovery_configs(tmp_path_factory.mktemp("secure"), three_party_data)
    parties = _started(files)
    try:
        return _finished(files, start_coordinator(files.job))
    finally:
        for party in parties.values():
            party.stop()


@pytest.mark.slow
def test_a_feature_party_killed_mid_epoch_recovers_to_the_same_result(
    secure_reference, three_party_data, tmp_path
):
    at = random.randint(10, 50)  # of the epoch's 70 steps

    files = _recovery_configs(tmp_path, three_party_data)
    parties = _started(files)
    job = None
    try:
        job = start_coordinator(files.job)
        wait_for_training_step(parties["bob"].address, at)
        os.kill(parties["carol"].process.pid, signal.SIGKILL)
        parties["carol"].process.wait()
        time.sleep(1.0)
        logs = files.folder / "logs"
        parties["carol"] = start_party(files.parties["carol"], logs / "carol-again.log")
        state = _finished(files, job)
    finally:
        if job is not None and job.poll() is None:
            job.kill()
            job.wait()
        for party in parties.values():
            party.stop()
    err = (files.folder / "logs" / "coordinator.log").read_text()
    assert re.search(r"recovering from checkpoint \d+ \(epoch 1, step \d+\)", err)
    # Bit for bit where the uninterrupted run ended (no replay explains a
    # difference: the replay runs plain steps, not masked sums).
    assert_same(
        secure_reference, state, RECOVERY_BATCH, same_checkpoints=False, explain=None
    )


def test_secure_aggregation_runs_with_pipelining_dp_and_a_gradient_defense(
    three_party_data, tmp_path
):
    files = _configs(
        tmp_path,
        three_party_data,
        strategy={"pipeline_size": 2, "warmup_steps": 10},
        privacy={
            "embedding_dp": {"clip_norm": 1.0, "noise_multiplier": 0.1},
            "label_dp": {"epsilon": 4.0},
            "gradient_defense": {"method": "max_norm"},
        },
    )
    [record] = run(files).records
    assert record.val_auc > 0.55
    assert record.epsilon is not None and record.epsilon > 0


def test_a_label_party_that_substitutes_a_key_stops_the_job(
    three_party_data, certs, tmp_path, monkeypatch
):
    """bob relays carol's share with his own public key in it (to read alice's
    tensor through the pair key he would share with her): alice refuses the
    share, and the job ends at once instead of recovering."""
    accept_share = LabelJob.accept_share

    def substituting(self, sender, share, cancelled):
        reply = accept_share(self, sender, share, cancelled)
        for relayed in reply.key_shares.shares:
            if relayed.party == "carol":
                relayed.public_key = bytes(range(32))
        return reply

    monkeypatch.setattr(LabelJob, "accept_share", substituting)
    files = _configs(tmp_path, three_party_data, certs)
    with pytest.raises(JobFailedError) as failed:
        run(files)
    message = str(failed.value)
    assert "the key share of party 'carol' does not carry a valid signature" in message
    assert "PERMISSION_DENIED" in message


# SIGTERM to a feature party while the job aligns its rows, and while a
# scoring command runs: the party exits cleanly with its PSI workers, the job
# goes on once the party is back, the scoring command stops naming the party.


def _children_of(pid: int, timeout: float = 120.0) -> set[int]:
    """Waits for ``pid`` to start processes of its own (its PSI workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = descendants(pid)
        if found:
            return found
        time.sleep(0.02)
    pytest.fail(f"process {pid} started no PSI workers within {timeout:.0f} s")


def _scoring_started(carol_pid: int, bob: str, scoring_job: str) -> None:
    """Returns once carol aligns the scoring job's rows or bob holds it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = party_status(bob, timeout=1.0)
        if descendants(carol_pid) or (status and status.job_id == scoring_job):
            return
        time.sleep(0.02)
    pytest.fail("the scoring command never started")


def _stopped_cleanly(party, log: Path) -> set[int]:
    """SIGTERMs ``party``; returns its processes still alive 30 s later."""
    workers = descendants(party.process.pid)
    assert party.stop(timeout=30) == 0
    text = log.read_text()
    assert "stopping party" in text and "Traceback" not in text
    return _still_alive(workers)


def _still_alive(pids: set[int], timeout: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


@pytest.mark.slow
def test_sigterm_to_a_feature_party_while_aligning_and_scoring(
    three_party_data, tmp_path
):
    files = _recovery_configs(tmp_path, three_party_data)
    files.edit("job", export="auto")
    for name in PARTIES:
        files.edit(name, datasets={"again": files.read(name)["data"]["path"]})
    logs = files.folder / "logs"
    parties = _started(files)
    job = None
    try:
        job = start_coordinator(files.job)
        _children_of(parties["carol"].process.pid)
        assert _stopped_cleanly(parties["carol"], logs / "carol.log") == set()
        parties["carol"] = start_party(files.parties["carol"], logs / "c2.log")
        _finished(files, job)
        retried = (logs / "coordinator.log").read_text()

        scoring = scoring_run_name(JOB, "epoch-1", "again")
        job = _predict(files)
        _scoring_started(parties["carol"].process.pid, parties["bob"].address, scoring)
        assert _stopped_cleanly(parties["carol"], logs / "c2.log") == set()
        _, stopped = job.communicate(timeout=300)
        parties["carol"] = start_party(files.parties["carol"], logs / "c3.log")
        job = _predict(files)
        out, err = job.communicate(timeout=300)
    finally:
        if job is not None and job.poll() is None:
            job.kill()
            job.wait()
        codes = {name: party.stop() for name, party in parties.items()}

    assert "trying again" in retried and "Traceback" not in retried
    assert job.returncode == 0, err[-3000:]
    assert "rows shared by every party" in out
    assert "party carol" in stopped and "Traceback" not in stopped
    assert codes == dict.fromkeys(("bob", "alice", "carol"), 0)


def _predict(files) -> subprocess.Popen:
    """``splitrec predict`` of version epoch-1 on "again"."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "splitrec.coordinator",
            "predict",
            "--job",
            str(files.job),
            "--model",
            "epoch-1",
            "--dataset",
            "again",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
