"""docker-compose.yml: valid, least-privilege, and its services run the job.

The services run as local processes built from the compose file and the
Dockerfile (``tests.compose_local``), each service on its own loopback address.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compose_local import (
    COMPOSE_FILE,
    LocalCompose,
    load_compose,
    parse_volume,
    read_dockerfile,
)

ADDRESSES = {"alice": "127.0.0.5", "bob": "127.0.0.6", "coordinator": "127.0.0.7"}
PARTIES = ("alice", "bob")


def _env(data: Path, certs: Path, runs: Path) -> dict[str, str]:
    return {
        "SPLITREC_DATA": str(data),
        "SPLITREC_CERTS": str(certs),
        "SPLITREC_RUNS": str(runs),
    }


def _mounts(service: dict) -> list[tuple[Path, str, bool]]:
    return [parse_volume(v, COMPOSE_FILE.parent) for v in service["volumes"]]


def test_image_is_slim_python_and_runs_as_a_non_root_user():
    image = read_dockerfile()
    first = COMPOSE_FILE.parent.joinpath("Dockerfile").read_text().split("FROM ", 1)
    assert first[1].split()[0] == "python:3.11-slim"
    assert image.user not in ("root", "0")
    for name in ("alice", "bob", "coordinator"):
        user = load_compose({})["services"][name]["user"]
        assert not user.startswith(("0:", "root")), name


def test_each_party_mounts_only_its_own_data_and_keys_read_only(tmp_path):
    compose = load_compose(_env(tmp_path / "d", tmp_path / "c", tmp_path / "r"))
    services = compose["services"]
    for party in PARTIES:
        other = next(p for p in PARTIES if p != party)
        mounts = _mounts(services[party])
        data = [(s, ro) for s, t, ro in mounts if t.startswith("/app/data/")]
        assert data == [(tmp_path / "d" / f"{party}_ml1m.csv", True)]
        for source, target, read_only in mounts:
            assert other not in source.name, (party, source)
            if target.startswith("/app/certs/"):
                assert read_only
        keys = [s.name for s, _, _ in mounts if s.suffix == ".key"]
        assert keys == [f"{party}.key"]
    coordinator = _mounts(services["coordinator"])
    assert not [t for _, t, _ in coordinator if t.startswith("/app/data")]
    assert [s.name for s, _, _ in coordinator if s.suffix == ".key"] == [
        "coordinator.key"
    ]
    # Each service mounts its own runs folder only.
    expected = {
        "alice": [(tmp_path / "r" / "alice", "/app/runs/alice")],
        "bob": [(tmp_path / "r" / "bob", "/app/runs/bob")],
        "coordinator": [(tmp_path / "r" / "coordinator", "/app/runs")],
    }
    for name, runs in expected.items():
        mounted = [(s, t) for s, t, _ in _mounts(services[name]) if "runs" in t]
        assert mounted == runs, name


def test_coordinator_waits_for_healthy_parties_checked_over_grpc_health():
    services = load_compose({})["services"]
    assert services["coordinator"]["depends_on"] == {
        "alice": {"condition": "service_healthy"},
        "bob": {"condition": "service_healthy"},
    }
    for party in PARTIES:
        # One shell string: podman's Docker API splits CMD arguments on spaces.
        kind, command = services[party]["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        assert command.startswith(
            "python -m splitrec.party_server.healthcheck --config "
        )


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed"
)
def test_docker_compose_validates_the_file_and_agrees_on_mounts(tmp_path):
    env = _env(tmp_path / "d", tmp_path / "c", tmp_path / "r")
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    import yaml

    theirs = yaml.safe_load(result.stdout)["services"]
    ours = load_compose(env)["services"]
    for name in ("alice", "bob", "coordinator"):
        resolved = {
            (Path(v.split(":")[0]), v.split(":")[1]) for v in theirs[name]["volumes"]
        }
        assert resolved == {(s, t) for s, t, _ in _mounts(ours[name])}, name
        assert theirs[name]["command"] == ours[name]["command"]


@pytest.mark.slow
def test_compose_services_run_the_reference_job(small_data, certs, tmp_path):
    runs = tmp_path / "runs"
    compose = LocalCompose(
        tmp_path / "services", _env(small_data, certs, runs), ADDRESSES
    )
    try:
        compose.up(health_timeout=120)
        coordinator = compose.services["coordinator"].process
        code = coordinator.wait(timeout=400)
        assert code == 0, compose.output("coordinator")
        job = runs / "coordinator" / "deepfm-ml1m"
        history = json.loads((job / "history.json").read_text())
        assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
        assert history[-1]["val_auc"] > 0.6
        assert (runs / "bob" / "deepfm-ml1m" / "predictions-validation.csv").exists()
        # Parties keep serving after the job; SIGTERM stops them cleanly.
        for party in PARTIES:
            compose.wait_healthy(party, timeout=60)
        assert {n: compose.stop(n) for n in PARTIES} == {"alice": 0, "bob": 0}
        for party in PARTIES:
            assert "mutual TLS" in compose.output(party)
    finally:
        compose.down()
