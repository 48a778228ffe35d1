"""Runs the services of docker-compose.yml as local processes, the way compose would.

No Docker engine is available to the tests, so this reads the compose file and
the Dockerfile and reproduces what a container would see:

- its file system: a folder per service holding the image's ``COPY``'d sources
  (linked from the repository) under ``WORKDIR`` and each volume at its mount
  point (files hard-linked or copied, so config files resolve relative paths
  from where the container sees them, as they would in the container);
- its command, with absolute container paths moved under that folder;
- its environment: the Dockerfile's ``ENV`` and the service's ``environment``;
- its network name: each service name maps to its own loopback address through
  ``SPLITREC_HOSTS``;
- ``depends_on`` with ``condition: service_healthy``: the service's healthcheck
  command runs until it passes before dependants start.

The compose file stays the single source of truth: nothing here names a
service's command, config or mounts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``$$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, default = match.groups()
        value = env.get(name)
        if operator == ":-" and not value:
            return default
        if operator == "-" and value is None:
            return default
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_all(value: object, env: Mapping[str, str]) -> object:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_interpolate_all(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate_all(v, env) for k, v in value.items()}
    return value


def load_compose(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict:
    """The compose file with anchors merged and variables substituted."""
    return _interpolate_all(yaml.safe_load(path.read_text()), env)


@dataclass
class Image:
    """What the Dockerfile puts in the image: its working folder, ENV and COPYs."""

    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str, str]] = field(default_factory=list)
    user: str = "root"


def read_dockerfile(path: Path = DOCKERFILE) -> Image:
    """The image's last stage. Its ``COPY --from`` of an earlier stage (the
    installed packages) and its ``PATH`` are left out: a local process uses the
    packages of the Python that runs the tests."""
    image = Image()
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        instruction, args = words[0].upper(), words[1:]
        if instruction == "FROM":
            image = Image()
        elif instruction == "COPY" and args[0].startswith("--from="):
            continue
        elif instruction == "WORKDIR":
            image.workdir = args[0]
        elif instruction == "ENV":
            for pair in args:
                key, _, value = pair.partition("=")
                if key != "PATH":
                    image.env[key] = value
        elif instruction == "COPY":
            destination = args[-1]
            for source in args[:-1]:
                image.copies.append((source, destination))
        elif instruction == "USER":
            image.user = args[0]
    return image


def parse_volume(spec: str, base: Path) -> tuple[Path, str, bool]:
    """``(host source, container target, read_only)`` of a short volume spec."""
    parts = spec.split(":")
    source, target = parts[0], parts[1]
    read_only = len(parts) > 2 and "ro" in parts[2].split(",")
    host = Path(source)
    return (host if host.is_absolute() else (base / host)).resolve(), target, read_only


def _place(source: Path, destination: Path, tree: bool = False) -> None:
    """A mount (folder: linked; file: hard link or copy) or, with ``tree``, a
    folder rebuilt with links to its files so that mounts can go inside it
    without touching the source."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir() and tree:
        shutil.copytree(source, destination, copy_function=os.symlink)
        return
    if source.is_dir():
        destination.symlink_to(source, target_is_directory=True)
        return
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@dataclass
class Service:
    name: str
    address: str
    root: Path
    command: list[str]
    env: dict[str, str]
    cwd: Path
    healthcheck: list[str] | None
    depends_on: dict[str, str]
    process: subprocess.Popen | None = None
    log: Path | None = None

    def inside(self, path: str) -> str:
        """A container path as this service's folder holds it."""
        return str(self.root / path.lstrip("/")) if path.startswith("/") else path


class LocalCompose:
    """The compose file's services, each in its own folder and loopback address."""

    def __init__(
        self,
        work: Path,
        env: Mapping[str, str],
        addresses: Mapping[str, str],
        compose_file: Path = COMPOSE_FILE,
    ) -> None:
        self.compose = load_compose(env, compose_file)
        self.image = read_dockerfile(compose_file.parent / "Dockerfile")
        self.base = compose_file.parent
        self.work = work
        hosts = ",".join(f"{name}={ip}" for name, ip in addresses.items())
        self.services: dict[str, Service] = {}
        for name, spec in self.compose["services"].items():
            root = work / name / "root"
            self._build_root(root, spec.get("volumes", []))
            process_env = {
                "PATH": os.environ.get("PATH", ""),
                **{k: self._translate(root, v) for k, v in self.image.env.items()},
                **{k: str(v) for k, v in _environment(spec).items()},
                "SPLITREC_HOSTS": hosts,
            }
            health = spec.get("healthcheck", {}).get("test")
            self.services[name] = Service(
                name=name,
                address=addresses[name],
                root=root,
                command=[self._translate(root, a) for a in _argv(spec["command"])],
                env=process_env,
                cwd=root / self.image.workdir.lstrip("/"),
                healthcheck=[self._translate(root, a) for a in _health_argv(health)]
                if health
                else None,
                depends_on=_depends_on(spec),
            )

    def _build_root(self, root: Path, volumes: list[str]) -> None:
        workdir = root / self.image.workdir.lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(exist_ok=True)
        for source, destination in self.image.copies:
            target = workdir / destination
            if destination.endswith("/") or destination == ".":
                target = target / Path(source).name
            if not target.exists():
                _place((self.base / source).resolve(), target, tree=True)
        for spec in volumes:
            source, target, _ = parse_volume(spec, self.base)
            if not source.exists():  # compose creates a missing bind source folder
                source.mkdir(parents=True)
            placed = root / target.lstrip("/")
            if not placed.parent.resolve().is_relative_to(root.resolve()):
                raise RuntimeError(f"{placed} would leave {root}")
            if placed.is_symlink() or placed.is_file():
                placed.unlink()
            elif placed.is_dir():
                shutil.rmtree(placed)
            _place(source, placed)

    def _translate(self, root: Path, value: str) -> str:
        parts = value.split(":")
        translated = [
            str(root / p.lstrip("/")) if p.startswith("/") else p for p in parts
        ]
        if value.startswith("/") or all(p.startswith("/") for p in parts if p):
            return ":".join(translated)
        return value

    def start(self, name: str) -> Service:
        service = self.services[name]
        argv = list(service.command)
        if argv and argv[0] == "python":
            argv[0] = sys.executable
        service.log = self.work / name / "output.log"
        with service.log.open("wb") as out:
            service.process = subprocess.Popen(
                argv,
                cwd=service.cwd,
                env=service.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return service

    def healthy(self, name: str) -> bool:
        return self.health(name)[0]

    def health(self, name: str) -> tuple[bool, str]:
        """Runs the service's healthcheck: (passed, what it printed)."""
        service = self.services[name]
        if service.healthcheck is None:
            return True, ""
        argv = list(service.healthcheck)
        if argv and argv[0] == "python":
            argv[0] = sys.executable
        result = subprocess.run(
            argv, cwd=service.cwd, env=service.env, capture_output=True, timeout=60
        )
        return result.returncode == 0, (result.stdout + result.stderr).decode()

    def wait_healthy(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        service = self.services[name]
        seen = ""
        while time.monotonic() < deadline:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.output(name)}")
            passed, seen = self.health(name)
            if passed:
                return
            time.sleep(1.0)
        raise TimeoutError(
            f"{name} not healthy after {timeout} s; the healthcheck said: {seen}\n"
            f"{self.output(name)}"
        )

    def up(self, health_timeout: float = 120.0) -> None:
        """Starts every service once what it depends on is healthy."""
        started: list[str] = []
        pending = list(self.services)
        while pending:
            ready = [
                n for n in pending if set(self.services[n].depends_on) <= set(started)
            ]
            if not ready:
                raise RuntimeError(f"depends_on cycle among {pending}")
            for name in ready:
                for dependency, condition in self.services[name].depends_on.items():
                    if condition == "service_healthy":
                        self.wait_healthy(dependency, health_timeout)
                self.start(name)
                started.append(name)
                pending.remove(name)

    def output(self, name: str) -> str:
        log = self.services[name].log
        return log.read_text(errors="replace") if log and log.exists() else ""

    def stop(self, name: str, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        process = self.services[name].process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def down(self) -> dict[str, int | None]:
        return {name: self.stop(name) for name in reversed(list(self.services))}


def _argv(command: object) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def _health_argv(test: list[str]) -> list[str]:
    """A healthcheck's command line: ``["CMD", ...]`` as it is, ``["CMD-SHELL",
    "one string"]`` split as a shell would."""
    kind, *rest = test
    return shlex.split(rest[0]) if kind == "CMD-SHELL" else rest


def _environment(spec: dict) -> dict[str, str]:
    env = spec.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _depends_on(spec: dict) -> dict[str, str]:
    depends = spec.get("depends_on", {})
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {
        name: (v or {}).get("condition", "service_started")
        for name, v in depends.items()
    }
