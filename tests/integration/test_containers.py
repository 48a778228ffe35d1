"""docker-compose up for real: the image is built from the wheelhouse, alice, bob
and the coordinator run as containers (TLS on) to the end of the job, each
container mounts only what the compose file gives it and runs as a non-root
user, and the coordinator starts only once both parties are healthy. Then bob's
container crashes mid-epoch: its restart policy brings it back, the coordinator
recovers, and the job ends with the uninterrupted run's metrics, bit for bit
(any difference fails, with a replay of each run saying which went astray);
alice's container is killed through the engine at the same moment and started
again through compose, and the job still recovers. Finally ``down`` leaves no
container, network or process of the project behind.

Runs through ``deploy/compose.sh``: a Docker engine when one answers, else
rootful podman (root needed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from splitrec.coordinator.local import pick_port
from tests.support import ROOT, metrics

pytestmark = pytest.mark.slow

COMPOSE = ROOT / "deploy" / "compose.sh"
PROJECT = f"splitrectest{os.getpid()}"
JOB = "deepfm-ml1m"


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return probe.returncode == 0


ENGINE = "docker" if _docker_engine() else "podman"
if ENGINE == "podman" and os.geteuid() != 0:
    pytest.skip("no Docker engine, and podman needs root here", allow_module_level=True)


def _compose(env: dict[str, str], *args: str, timeout: float = 1200):
    return subprocess.run(
        [str(COMPOSE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _inspect(name: str) -> dict:
    result = subprocess.run(
        [ENGINE, "inspect", f"{PROJECT}_{name}_1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def _project_containers() -> list[str]:
    label = f"label=com.docker.compose.project={PROJECT}"
    result = subprocess.run(
        [ENGINE, "ps", "-a", "--filter", label, "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.split()


def _time(value: str) -> datetime:
    """An engine's timestamp (nanoseconds and zone suffixes vary)."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", value)
    assert found, value
    fraction = (found.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{found.group(1)}.{fraction}")


class Up:
    """``compose.sh job`` in the background, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(
            [str(COMPOSE), "job"],
            cwd=ROOT,
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.text()):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        pytest.fail(f"never saw {pattern!r}:\n{self.text()[-4000:]}")

    def finish(self, timeout: float = 900) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(60)
            self._file.close()
        return code


@pytest.fixture(scope="module")
def compose_env(small_data, certs, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The environment for compose.sh: generated data, a copy of the
    certificates, free ports, a project name of the test's own; ``down`` at the
    end whatever happened."""
    wheels = subprocess.run(
        ["make", "wheelhouse"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert wheels.returncode == 0, wheels.stderr[-3000:]
    folder = tmp_path_factory.mktemp("containers")
    shutil.copytree(certs, folder / "certs")
    env = {
        **os.environ,
        "SPLITREC_DATA": str(small_data),
        "SPLITREC_CERTS": str(folder / "certs"),
        "SPLITREC_EPOCHS": "2",
        # Published on the host for grpcurl only; the test does not use them.
        "SPLITREC_ALICE_PORT": str(pick_port()),
        "SPLITREC_BOB_PORT": str(pick_port()),
        "SPLITREC_IMAGE": "splitrec:test",
        "COMPOSE_PROJECT_NAME": PROJECT,
    }
    env.pop("SPLITREC_UID", None)
    env.pop("SPLITREC_GID", None)
    try:
        yield env
    finally:
        _compose({**env, "SPLITREC_RUNS": str(folder / "runs")}, "down", "-t", "5")


def _mounts(container: dict) -> dict[str, tuple[str, bool]]:
    return {m["Destination"]: (m["Source"], m["RW"]) for m in container["Mounts"]}


def _check_containers(env: dict[str, str], runs: Path) -> None:
    """What each running container mounts and whom it runs as."""
    data, certs = Path(env["SPLITREC_DATA"]), Path(env["SPLITREC_CERTS"])
    for party in ("alice", "bob"):
        container = _inspect(party)
        mounts = _mounts(container)
        assert set(mounts) == {
            f"/app/deploy/compose/{party}.yaml",
            f"/app/data/{party}_ml1m.csv",
            "/app/certs/ca.pem",
            f"/app/certs/{party}.pem",
            f"/app/certs/{party}.key",
            f"/app/runs/{party}",
        }, party
        assert mounts[f"/app/data/{party}_ml1m.csv"] == (
            str(data / f"{party}_ml1m.csv"),
            False,
        )
        assert mounts[f"/app/certs/{party}.key"] == (str(certs / f"{party}.key"), False)
        assert mounts[f"/app/runs/{party}"][0] == str(runs / party)
        assert not container["Config"]["User"].startswith(("0", "root")), party
    coordinator = _inspect("coordinator")
    assert set(_mounts(coordinator)) == {
        "/app/deploy/compose/job.yaml",
        "/app/certs/ca.pem",
        "/app/certs/coordinator.pem",
        "/app/certs/coordinator.key",
        "/app/runs",
    }
    assert not coordinator["Config"]["User"].startswith(("0", "root"))


def _healthy_before(party: str, started: datetime) -> bool:
    """Whether ``party``'s healthcheck passed before ``started``."""
    log = _inspect(party)["State"]["Health"]["Log"]
    passed = [_time(entry["End"]) for entry in log if entry["ExitCode"] == 0]
    return bool(passed) and min(passed) <= started


def _metrics(runs: Path) -> list[dict]:
    """Every epoch's metrics of a container run."""
    history = json.loads((runs / "coordinator" / JOB / "history.json").read_text())
    return [metrics(row) for row in history]


def _astray(runs: Path, data: Path, folder: Path) -> str | None:
    """The first window of a container run that a replay in one process does
    not reproduce (see ``tests.replay``): the run's checkpoints beside the same
    job written for local processes."""
    from splitrec.coordinator.local_configs import LocalConfigs
    from tests.replay import Replay

    LocalConfigs.write(folder, data, epochs=2)
    for party in ("alice", "bob"):
        shutil.copytree(
            runs / party / JOB / "checkpoints",
            folder / "runs" / party / JOB / "checkpoints",
        )
    return Replay(folder).first_astray()


def _recovered_exactly(
    reference: Path, crashed: Path, data: Path, folder: Path
) -> None:
    """The crashed run ends where the uninterrupted one did: the same metrics
    every epoch, bit for bit. When they differ, a replay of each run in one
    process says which of the two went astray."""
    want, got = _metrics(reference), _metrics(crashed)
    if want == got:
        return
    verdicts = {
        name: _astray(runs, data, folder / name) or "replays exactly"
        for name, runs in (("uninterrupted", reference), ("recovered", crashed))
    }
    raise AssertionError(
        f"the recovered run ({crashed}) ends with {got}, the uninterrupted one "
        f"({reference}) with {want}; replayed: {verdicts}"
    )


def _kill_and_start_alice(env: dict[str, str]) -> None:
    """alice's container killed through the engine (``kill``: a stop by the
    user, which the restart policy leaves stopped), then started again through
    compose (the engine's own CLI may not see compose.sh's network)."""
    killed = subprocess.run(
        [ENGINE, "kill", f"{PROJECT}_alice_1"], capture_output=True, timeout=60
    )
    assert killed.returncode == 0, killed.stderr
    deadline = time.monotonic() + 60
    while _inspect("alice")["State"]["Running"]:
        assert time.monotonic() < deadline, "alice's container still runs"
        time.sleep(0.5)
    started = _compose(env, "start", "alice", timeout=300)
    assert started.returncode == 0, started.stderr


def test_compose_up_runs_the_job_in_containers_and_survives_a_crash(
    compose_env, tmp_path
):
    # The uninterrupted run; the image is built on the way.
    runs = tmp_path / "runs"
    env = {**compose_env, "SPLITREC_RUNS": str(runs)}
    up = Up(env, tmp_path / "up.log")
    up.wait_for(r"coordinator_1\s+\|.*epoch 1/2: ")
    _check_containers(env, runs)
    started = _time(_inspect("coordinator")["State"]["StartedAt"])
    assert _healthy_before("alice", started) and _healthy_before("bob", started)
    assert up.finish() == 0, up.text()[-4000:]
    up_seconds = time.monotonic() - up.started
    assert "job finished: 2 epochs" in up.text()
    for name in ("history.json", "curves.png", "traffic.json", "manifest.json"):
        assert (runs / "coordinator" / JOB / name).exists(), name
    assert (runs / "bob" / JOB / "predictions-validation.csv").exists()

    # bob's container crashes mid-epoch (its process is killed, as the kernel's
    # OOM killer would): the restart policy brings it back. A kill through the
    # engine's API would count as a stop by the user, which restart policies
    # (Docker's and podman's alike) leave stopped.
    crashed = tmp_path / "runs-crash"
    env = {**compose_env, "SPLITREC_RUNS": str(crashed)}
    up = Up(env, tmp_path / "up-crash.log")
    up.wait_for(r"coordinator_1\s+\|.*epoch 1/2: 100/")
    os.kill(_inspect("bob")["State"]["Pid"], signal.SIGKILL)
    _kill_and_start_alice(env)
    assert up.finish() == 0, up.text()[-4000:]
    text = up.text()
    assert "recovering from checkpoint" in text
    recovered, *_ = re.findall(r"recovered in ([0-9.]+) s", text)
    assert _inspect("bob")["RestartCount"] >= 1
    _recovered_exactly(runs, crashed, Path(env["SPLITREC_DATA"]), tmp_path / "replay")
    print(f"up: {up_seconds:.0f} s; bob recovered in {recovered} s")

    # down: nothing of the project is left.
    down = _compose(env, "down", "-t", "5")
    assert down.returncode == 0, down.stderr
    assert _project_containers() == []
    networks = subprocess.run(
        [ENGINE, "network", "ls", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert f"{PROJECT}_default" not in networks
    for pattern in (PROJECT, "splitrec-compose"):  # containers; compose.sh's API
        left = subprocess.run(
            ["pgrep", "-f", pattern], capture_output=True, text=True, timeout=30
        ).stdout.split()
        assert left == [], (pattern, left)
