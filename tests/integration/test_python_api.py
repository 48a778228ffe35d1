"""The Python API against real party processes started by ``Federation.local``."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import splitrec
from splitrec import (
    CSVLogger,
    EarlyStopping,
    Federation,
    LambdaCallback,
    ModelCheckpoint,
)
from splitrec.config import PartyConfig
from splitrec.coordinator.local import pick_addresses
from splitrec.coordinator.local_configs import LocalConfigs
from tests.support import ROOT, alive, metrics, wait_until

pytestmark = pytest.mark.slow

ALICE_COLUMNS = ["ID", "UserID", "Gender", "Age", "Occupation", "Zip-code"]
BOB_COLUMNS = ["ID", "MovieID", "Rating", "Title", "Genres", "Timestamp"]


def _alice(data: Path, out: Path) -> dict:
    return {
        "party": "alice",
        "data": {"path": str(data / "alice_ml1m.csv"), "columns": ALICE_COLUMNS},
        "features": [
            {"name": "UserID", "type": "hashed", "bins": 6040},
            {"name": "Gender", "type": "vocabulary", "vocabulary": ["F", "M"]},
            {
                "name": "Age",
                "type": "vocabulary",
                "vocabulary": ["1", "18", "25", "35", "45", "50", "56"],
            },
        ],
        "model": {"family": "deepfm", "embedding_dim": 4, "deep_units": [32, 8]},
        "peers": [{"name": "bob", "address": "127.0.0.1:1"}],
        "output_dir": str(out / "alice"),
        "datasets": {"later": str(data / "alice_ml1m.csv")},
        "tls": {"insecure": True},
    }


def _bob(data: Path, out: Path) -> dict:
    return {
        "party": "bob",
        "data": {"path": str(data / "bob_ml1m.csv"), "columns": BOB_COLUMNS},
        "features": [
            {"name": "MovieID", "type": "hashed", "bins": 3952},
            {
                "name": "Genres",
                "type": "multi_hot",
                "separator": " ",
                "vocabulary": ["Action", "Comedy", "Drama", "Thriller"],
            },
        ],
        "label": {"column": "Rating", "positive_above": 3},
        "model": {
            "family": "deepfm",
            "embedding_dim": 4,
            "deep_units": [32, 8],
            "fuse_units": [32, 8],
        },
        "peers": [{"name": "alice", "address": "127.0.0.1:1"}],
        "output_dir": str(out / "bob"),
        "datasets": {"later": str(data / "bob_ml1m.csv")},
        "tls": {"insecure": True},
    }


def _job(runs: Path, name: str = "api-job", **changes: object) -> dict:
    return {
        "job": name,
        "parties": [
            {"name": "alice", "address": "127.0.0.1:1"},
            {"name": "bob", "address": "127.0.0.1:1"},
        ],
        "label_party": "bob",
        "epochs": 3,
        "batch_size": 256,
        "seed": 99,
        "runs_dir": str(runs),
        "connect_timeout": 30,
        "rpc_timeout": 60,
        "tls": {"insecure": True},
        **changes,
    }


# Train loss falls epoch after epoch, so "the highest train loss" is best
# after epoch 1 and never improves: the run stops after 1 + patience epochs.
NEVER_IMPROVES = {"monitor": "train_loss", "mode": "max", "patience": 1}


def _pids(fed: Federation) -> list[int]:
    assert fed._started is not None
    return [p.process.pid for p in fed._started.parties.values()]


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    reader.Reload()
    return {
        tag: [(e.step, e.value) for e in reader.Scalars(tag)]
        for tag in reader.Tags()["scalars"]
    }


def test_the_verbs_early_stopping_and_tensorboard(small_data: Path, tmp_path: Path):
    out, runs = tmp_path / "out", tmp_path / "runs"
    reports, epochs_seen = [], []
    parties = [
        PartyConfig.model_validate(_alice(small_data, out)),
        _bob(small_data, out),
    ]
    with Federation.local(_job(runs), parties) as fed:
        pids = _pids(fed)
        history = fed.fit(
            epochs=5,
            keep_checkpoints=1,
            callbacks=[
                EarlyStopping(**NEVER_IMPROVES),
                ModelCheckpoint("best-{epoch}", monitor="val_loss"),
                CSVLogger(tmp_path / "history.csv"),
                LambdaCallback(
                    on_progress=reports.append,
                    on_epoch_end=lambda r: epochs_seen.append(r.epoch),
                ),
            ],
            progress=False,
        )
        # Stopped after epoch 2 (1 + patience), back at epoch 1's model.
        assert list(history.frame.index) == [1, 2] == epochs_seen
        assert history.stopped_by and "train_loss" in history.stopped_by[0]
        assert history.exported == "epoch-1"
        assert reports and reports[-1].step == reports[-1].steps
        assert {r.epoch for r in reports} == {1, 2}
        csv = (tmp_path / "history.csv").read_text().splitlines()
        assert csv[0].startswith("epoch,train_loss") and len(csv) == 3

        # The weights the parties ended with are epoch 1's checkpoint (kept
        # beyond checkpoint.keep = 1 for it), not epoch 2's.
        again = fed.export("again", epoch=1)
        later = fed.export("later", epoch=2)
        manifest = json.loads((runs / "api-job" / "manifest.json").read_text())
        exports = manifest["exports"]
        assert again.epoch == 1 and later.epoch == 2
        assert fed.history().exported == "later"  # the newest version
        assert exports["epoch-1"]["parties"] == exports["again"]["parties"]
        assert exports["epoch-1"]["parties"] != exports["later"]["parties"]
        assert manifest["stopped"] == 2 and manifest["final_epoch"] == 1
        # ModelCheckpoint exported after epoch 1 and after each epoch that
        # lowered the validation loss.
        improved = [1] + [2] * bool(
            history.frame.loc[2, "val_loss"] < history.frame.loc[1, "val_loss"]
        )
        best = {v: e["epoch"] for v, e in exports.items() if v.startswith("best-")}
        assert best == {f"best-{e}": e for e in improved}

        # evaluate() computes the final model's metrics again at the parties.
        metrics = fed.evaluate()
        assert metrics["epoch"] == 1
        assert metrics["val_auc"] == pytest.approx(history.frame.loc[1, "val_auc"])
        assert fed.evaluate(epoch=2)["val_auc"] == pytest.approx(
            history.frame.loc[2, "val_auc"]
        )

        prediction = fed.predict("later", version="again")
        assert prediction.scored_rows == prediction.shared_rows > 0
        assert prediction.scores is not None
        assert len(prediction.scores) == prediction.scored_rows
        assert prediction.scores["score"].between(0, 1).all()

        # The same model trained in this process on the joined data learns
        # the same (split = centralized).
        centralized = fed.baseline(epochs=2)
        assert centralized.frame["val_auc"].tolist() == pytest.approx(
            history.frame["val_auc"].tolist(), abs=1e-6
        )

        status = fed.status()
        assert set(status) == {"alice", "bob"}
        assert status["bob"]["role"] == "ROLE_LABEL"

        with pytest.raises(splitrec.ConfigError, match="'epochs'"):
            fed.fit(epochs=0)
        with pytest.raises(splitrec.ConfigError, match="'bogus' is not a job setting"):
            fed.fit(bogus=1)
        with pytest.raises(splitrec.JobFailedError, match="no unfinished run"):
            fed.resume()
    assert not any(alive(pid) for pid in pids)

    scalars = _scalars(runs / "api-job" / "tensorboard")
    frame = history.frame
    assert [s for s, _ in scalars["epoch/val_auc"]] == [1, 2]
    for (_, value), expected in zip(
        scalars["epoch/val_auc"], frame["val_auc"], strict=True
    ):
        assert value == pytest.approx(expected, rel=1e-6)
    assert scalars["train/loss"] and scalars["train/samples_per_second"]
    assert [s for s, _ in scalars["wire/peer_bytes"]] == [1, 2]
    assert scalars["wire/peer_bytes"][1][1] > scalars["wire/peer_bytes"][0][1] > 0


def test_the_parties_stop_when_a_cell_raises_or_is_interrupted(
    small_data: Path, tmp_path: Path
):
    out, runs = tmp_path / "out", tmp_path / "runs"
    parties = [_alice(small_data, out), _bob(small_data, out)]
    with (
        pytest.raises(RuntimeError, match="a cell failed"),
        Federation.local(_job(runs), parties) as fed,
    ):
        pids = _pids(fed)
        raise RuntimeError("a cell failed")
    assert not any(alive(pid) for pid in pids)

    # What Jupyter's "interrupt the kernel" does: SIGINT from another process
    # to the kernel, mid-epoch, a KeyboardInterrupt in its main thread.
    script = tmp_path / "cell.py"
    script.write_text(_CELL)
    setup = tmp_path / "cell.json"
    setup.write_text(json.dumps([_job(runs, steps_per_window=10), parties]))
    errors = tmp_path / "cell.err"
    with errors.open("w") as stderr:
        kernel = subprocess.Popen(
            [sys.executable, str(script), str(setup)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        pids = [int(pid) for pid in kernel.stdout.readline().split()[1:]]
        assert pids, errors.read_text()[-3000:]
        assert kernel.stdout.readline() == "progress\n"  # mid-epoch
        kernel.send_signal(signal.SIGINT)
        out, _ = kernel.communicate(timeout=120)  # only catches a hang
    finally:
        kernel.kill()
        kernel.wait()
    err = errors.read_text()
    assert "KeyboardInterrupt" in err and "finished" not in out, err[-3000:]
    assert not any(alive(pid) for pid in pids)

    # The interrupted run goes on where its last checkpoint left it.
    with Federation.local(_job(runs, steps_per_window=10), parties) as fed:
        history = fed.resume(progress=False)
        assert list(history.frame.index) == [1, 2, 3]


# A notebook cell in a kernel process of its own: the parties' pids, a line
# per progress report, "finished" if the fit ends.
_CELL = """
import json, signal, sys
from splitrec import Federation, LambdaCallback

# A kernel turns SIGINT into KeyboardInterrupt whatever its launcher left (a
# job started in the background by a shell without job control ignores it).
signal.signal(signal.SIGINT, signal.default_int_handler)

job, parties = json.load(open(sys.argv[1]))
with Federation.local(job, parties) as fed:
    pids = [p.process.pid for p in fed._started.parties.values()]
    print("pids", *pids, flush=True)
    fed.fit(
        callbacks=[LambdaCallback(on_progress=lambda r: print("progress", flush=True))],
        report_every=10,
        checkpoint_every=20,
        progress=False,
    )
print("finished", flush=True)
"""


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_config_built_in_python_gives_the_same_run_as_its_yaml_twin(
    small_data: Path, tmp_path: Path
):
    """The command line on YAML files (with ``early_stopping`` in the job
    file) and the API on the same configs built in Python: the same metrics,
    bit for bit."""
    stop = {"early_stopping": NEVER_IMPROVES}
    files, python = tmp_path / "files", tmp_path / "python"
    files.mkdir()
    job = _write(files / "job.yaml", _job(files / "runs", epochs=4, **stop))
    alice = _write(files / "alice.yaml", _alice(small_data, files / "out"))
    bob = _write(files / "bob.yaml", _bob(small_data, files / "out"))
    pick_addresses(LocalConfigs(files, alice=alice, bob=bob, job=job))
    command = [sys.executable, "-m", "splitrec", "demo", "--job", str(job)]
    command += ["--party", str(alice), "--party", str(bob)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from_files = json.loads((files / "runs" / "api-job" / "history.json").read_text())

    parties = [
        PartyConfig.model_validate(_alice(small_data, python / "out")),
        PartyConfig.model_validate(_bob(small_data, python / "out")),
    ]
    with Federation.local(_job(python / "runs", epochs=4, **stop), parties) as fed:
        history = fed.fit(progress=False)
    from_python = json.loads((python / "runs" / "api-job" / "history.json").read_text())

    assert len(from_files) == len(from_python) == 2  # stopped early, both ways
    for a, b in zip(from_files, from_python, strict=True):
        assert metrics(a) == metrics(b)
    assert history.exported == "epoch-1"


def test_a_signal_to_a_script_using_the_api_stops_its_parties(
    small_data: Path, tmp_path: Path
):
    """A plain script: SIGTERM while it trains ends it, and its parties."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    script = tmp_path / "train.py"
    script.write_text(
        "import json, sys\n"
        "from splitrec import Federation\n"
        f"job = json.loads({json.dumps(json.dumps(_job(runs, epochs=50)))})\n"
        f"alice = json.loads({json.dumps(json.dumps(_alice(small_data, out)))})\n"
        f"bob = json.loads({json.dumps(json.dumps(_bob(small_data, out)))})\n"
        "with Federation.local(job, [alice, bob]) as fed:\n"
        "    print('PIDS', *[p.process.pid for p in fed._started.parties.values()],"
        " flush=True)\n"
        "    fed.fit(progress=False)\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PIDS"), line
        pids = [int(p) for p in line.split()[1:]]
        manifest = runs / "api-job" / "manifest.json"
        wait_until(manifest.is_file, timeout=300)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout=60)


def test_a_model_declared_from_python_functions(small_data: Path, tmp_path: Path):
    """The user's own Keras builders, from a module file (what a notebook's
    ``%%writefile`` cell makes), passed as functions."""
    source = ROOT / "examples" / "custom_models" / "cross_network.py"
    module_file = tmp_path / "my_models.py"
    module_file.write_text(source.read_text())
    spec = importlib.util.spec_from_file_location("my_models", module_file)
    my_models = importlib.util.module_from_spec(spec)
    sys.modules["my_models"] = my_models
    try:
        spec.loader.exec_module(my_models)
        out, runs = tmp_path / "out", tmp_path / "runs"
        alice, bob = _alice(small_data, out), _bob(small_data, out)
        alice["model"] = splitrec.custom_model(my_models.build_base, output_width=8)
        bob["model"] = splitrec.custom_model(
            my_models.build_base, output_width=8, fuse=my_models.build_fuse
        )
        with Federation.local(_job(runs, epochs=1), [alice, bob]) as fed:
            history = fed.fit(progress=False)
            written = yaml.safe_load((fed.run_dir / "parties" / "bob.yaml").read_text())
    finally:
        sys.modules.pop("my_models", None)
    assert written["model"]["base"] == "my_models:build_base"
    assert written["model"]["code"] == str(tmp_path.resolve())
    assert 0.0 < history.frame.loc[1, "val_auc"] < 1.0


def test_connect_drives_parties_that_already_run(
    small_data: Path, tls_party_files: LocalConfigs, tmp_path: Path
):
    """Parties started on their own (as at their companies), over mutual TLS;
    the job file is all the API gets."""
    from splitrec.coordinator.local import start_local_parties

    parties = start_local_parties(tls_party_files, tmp_path / "logs")
    try:
        fed = Federation.connect(tls_party_files.job)
        history = fed.fit(epochs=1, progress=False)
        assert list(history.frame.index) == [1]
        status = fed.status()
        assert {s["transport_security"] for s in status.values()} == {"mutual-tls"}
        with pytest.raises(splitrec.JobFailedError, match="only where every party"):
            fed.baseline()
        fed.close()  # nothing to stop: the parties are not this process's
        assert all(p.process.poll() is None for p in parties.values())
    finally:
        for party in parties.values():
            party.stop()
