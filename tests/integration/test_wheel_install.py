"""The wheel (built from the sdist), installed into a fresh virtual environment,
runs a job from a folder that holds no source: what a new user does after
``pip install``.

The wheel is built from this checkout; its dependencies come from the registry
``pip`` is configured with (the one the project's own install uses).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from splitrec.coordinator.local import pick_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Seconds that only catch a hang: installing TensorFlow from the cache, a job.
HANG = 900


def _run(argv: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert result.returncode == 0, (argv, result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """(the venv's bin folder, an environment that sees only it, the wheel)."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    # The sdist first, then the wheel from the unpacked sdist: both must be whole.
    _run(
        [sys.executable, "-m", "build", "--outdir", dist, ROOT], base, dict(os.environ)
    )
    (wheel,) = dist.glob("splitrec-*.whl")
    assert len(list(dist.glob("splitrec-*.tar.gz"))) == 1
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], base, dict(os.environ))
    bin_dir = venv / "bin"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    _run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--no-compile", wheel],
        base,
        env,
    )
    return bin_dir, env, wheel


def test_the_wheel_holds_one_import_package(installed) -> None:
    bin_dir, env, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"splitrec", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    for expected in (
        "splitrec/v1/peer_pb2.py",
        "splitrec/v1/peer.proto",
        "splitrec/party_server/server.py",
        "splitrec/configs/job.yaml",
        "splitrec/configs/three_party/carol.yaml",
        "splitrec/configs/schema/party.json",
        "splitrec/examples/custom_models/cross_network.py",
    ):
        assert expected in names, expected
    shown = _run([bin_dir / "python", "-m", "pip", "show", "-f", "splitrec"], ROOT, env)
    files = shown.stdout.split("Files:", 1)[1].split()
    outside = {
        f
        for f in files
        if not f.startswith(("splitrec/", "splitrec-", "../../../bin/"))
    }
    assert not outside, outside
    scripts = {Path(f).name for f in files if f.startswith("../../../bin/")}
    assert scripts == {"splitrec", "splitrec-party"}


def test_a_new_user_trains_from_an_empty_folder(installed, tmp_path) -> None:
    bin_dir, env, _ = installed
    work = tmp_path / "user"
    work.mkdir()
    version = _run(["splitrec", "--version"], work, env).stdout
    assert version.startswith("splitrec ")
    imported = _run(
        ["python", "-c", "import splitrec, sys; print(splitrec.__file__)"], work, env
    ).stdout
    assert Path(imported.strip()).is_relative_to(bin_dir.parent), imported

    _run(["splitrec", "schema", "job", "--out", "job.schema.json"], work, env)
    schema = json.loads((work / "job.schema.json").read_text())
    assert {"epochs", "parties", "tls"} <= set(schema["properties"])

    # The data verbs, as a user with no ml-1m copy prepares data.
    _run(
        [
            "splitrec",
            "data",
            "movielens",
            "generate",
            "--out",
            "raw",
            "--num-ratings",
            "12080",
            "--seed",
            "3",
        ],
        work,
        env,
    )
    _run(
        [
            "splitrec",
            "data",
            "movielens",
            "prepare",
            "--source",
            "raw",
            "--out",
            "data",
        ],
        work,
        env,
    )
    assert (work / "data" / "alice_ml1m.csv").is_file()

    # The zero-config demo: data, certificates and configs in one folder.
    demo = _run(
        ["splitrec", "demo", "--work", "demo", "--ratings", "12080", "--epochs", "1"],
        work,
        env,
    )
    assert "job finished: 1 epochs" in demo.stdout
    history = json.loads(
        (work / "demo/reference/runs/deepfm-ml1m/history.json").read_text()
    )
    assert len(history) == 1

    # Two party servers started by hand, then `splitrec run` drives them, on the
    # data the data verbs wrote.
    ports = {"alice": pick_port(), "bob": pick_port()}
    configs = {}
    for party in ("alice", "bob"):
        config = yaml.safe_load(
            (work / "demo" / "reference" / f"{party}.yaml").read_text()
        )
        config["data"]["path"] = str(work / "data" / f"{party}_ml1m.csv")
        config["listen"] = f"127.0.0.1:{ports[party]}"
        for peer in config["peers"]:
            peer["address"] = f"127.0.0.1:{ports[peer['name']]}"
        configs[party] = work / f"{party}.yaml"
        configs[party].write_text(yaml.safe_dump(config))
    job = yaml.safe_load((work / "demo" / "reference" / "job.yaml").read_text())
    job.update(job="by-hand", runs_dir=str(work / "runs"), epochs=1)
    for party in job["parties"]:
        party["address"] = f"127.0.0.1:{ports[party['name']]}"
    (work / "job.yaml").write_text(yaml.safe_dump(job))

    parties = {}
    try:
        for party in ("bob", "alice"):
            process = subprocess.Popen(
                ["splitrec-party", "--config", str(configs[party])],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=(work / f"{party}.log").open("wb"),
                text=True,
            )
            parties[party] = process
            ready = process.stdout.readline()
            assert ready.startswith(f"READY party={party}"), (
                ready,
                (work / f"{party}.log").read_text()[-3000:],
            )
        ran = _run(["splitrec", "run", "--job", "job.yaml"], work, env)
        assert "job finished: 1 epochs" in ran.stdout
        assert (work / "runs" / "by-hand" / "history.json").is_file()
    finally:
        for process in parties.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: p.wait(timeout=60) for name, p in parties.items()}
    assert codes == {"alice": 0, "bob": 0}
