"""Local party processes: one log per run, the previous run's kept as ``.1``; a
local federation started on fresh ports when one was taken."""

from __future__ import annotations

import pytest

from splitrec.common.errors import JobFailedError
from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.local import START_ATTEMPTS, start_federation, start_party
from splitrec.coordinator.local_configs import LocalConfigs


def test_each_start_writes_a_fresh_log_and_keeps_the_previous_one(tmp_path):
    log = tmp_path / "logs" / "alice.log"
    log.parent.mkdir()
    log.write_text("the previous run\n")

    with pytest.raises(JobFailedError, match="did not start"):
        start_party(tmp_path / "missing.yaml", log, ready_timeout=60)

    assert (tmp_path / "logs" / "alice.log.1").read_text() == "the previous run\n"
    text = log.read_text()
    assert "the previous run" not in text
    assert "config file not found" in text


class _Party:
    """A started party as ``start_federation`` sees it."""

    def __init__(self, name: str, address: str, stopped: list[str]) -> None:
        self.name, self.address, self._stopped = name, address, stopped

    def stop(self) -> None:
        self._stopped.append(self.name)


def _three_parties(tmp_path) -> LocalConfigs:
    return LocalConfigs.write(tmp_path, tmp_path / "data", layout="three-party")


def test_a_federation_starts_label_party_first_and_every_config_names_the_ports(
    tmp_path,
):
    configs = _three_parties(tmp_path)
    order = []

    def start(name, config):
        order.append(name)
        return _Party(name, load_party_config(config).listen, [])

    started = start_federation(configs, start)

    assert order == ["bob", "alice", "carol"]
    addresses = {n: p.address for n, p in started.items()}
    assert len(set(addresses.values())) == 3
    assert all(a.startswith("127.0.0.1:") for a in addresses.values())
    job = load_job_config(configs.job)
    assert {p.name: p.address for p in job.parties} == addresses
    for name, config in configs.parties.items():
        for peer in load_party_config(config).peers:
            assert peer.address == addresses[peer.name], (name, peer.name)


def test_a_taken_port_starts_the_whole_federation_again_on_fresh_ports(tmp_path):
    configs = _three_parties(tmp_path)
    stopped, tried = [], []

    def start(name, config):
        listen = load_party_config(config).listen
        tried.append((name, listen))
        if len(tried) == 2:  # alice's port was taken by another process
            raise JobFailedError(f"splitrec-party: cannot listen on {listen}: in use")
        return _Party(name, listen, stopped)

    started = start_federation(configs, start)

    assert [name for name, _ in tried] == ["bob", "alice", "bob", "alice", "carol"]
    assert stopped == ["bob"]  # the first bob, before the second start
    assert started["alice"].address == load_party_config(configs.alice).listen
    assert started["alice"].address != tried[1][1]


@pytest.mark.parametrize(
    ("error", "starts"),
    [
        (OSError("splitrec-party: config file not found"), 2),
        (
            JobFailedError("splitrec-party: cannot listen on 127.0.0.1:1: in use"),
            2 * START_ATTEMPTS,
        ),
    ],
)
def test_other_failures_and_the_last_taken_port_stop_the_started_and_raise(
    tmp_path, error, starts
):
    configs = _three_parties(tmp_path)
    stopped, tried = [], []

    def start(name, config):
        tried.append(name)
        if name == "alice":
            raise error
        return _Party(name, "", stopped)

    with pytest.raises(type(error), match=str(error)):
        start_federation(configs, start)

    assert len(tried) == starts  # one attempt, or START_ATTEMPTS of them
    assert stopped == ["bob"] * (starts // 2)
