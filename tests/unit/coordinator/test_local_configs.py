"""LocalConfigs: the example configs of a layout rewritten into a folder, for
two parties or three (the three-party job: alice, carol and bob)."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.local_configs import EXAMPLES, LocalConfigs

THREE_PARTY = EXAMPLES / "three_party"


def test_the_three_party_examples_load():
    configs = {
        n: load_party_config(THREE_PARTY / f"{n}.yaml")
        for n in ("alice", "carol", "bob")
    }
    job = load_job_config(THREE_PARTY / "job.yaml")

    root = EXAMPLES.parent.resolve()
    assert [p.name for p in job.parties] == ["alice", "carol", "bob"]
    assert job.label_party == "bob"
    assert job.tls.cert == root / "certs" / "coordinator.pem"
    listen = {n: c.listen for n, c in configs.items()}
    assert listen == {
        "alice": "127.0.0.1:50051",
        "bob": "127.0.0.1:50052",
        "carol": "127.0.0.1:50053",
    }
    assert {p.name: p.address for p in job.parties} == listen
    for name, config in configs.items():
        assert config.data.path == root / "data" / f"{name}_3p.csv"
        assert config.tls.cert == root / "certs" / f"{name}.pem"
        assert config.tls.key == root / "certs" / f"{name}.key"
        assert config.output_dir == root / "runs" / name
        assert config.model.family == "dnn"
        assert config.model.deep_units == (256, 32)
    peers = {n: [(p.name, p.address) for p in c.peers] for n, c in configs.items()}
    assert peers == {
        "alice": [("bob", listen["bob"])],
        "carol": [("bob", listen["bob"])],
        "bob": [("alice", listen["alice"]), ("carol", listen["carol"])],
    }
    assert configs["bob"].role.name == "LABEL"
    assert configs["bob"].model.aggregation == "sum"
    assert configs["carol"].data.columns == ("ID", "Genres", "Year")
    assert configs["bob"].data.columns == ("ID", "UserID", "MovieID", "Rating")


def test_three_party_folder(tmp_path):
    data = tmp_path / "data"
    files = LocalConfigs.write(
        tmp_path / "cfg", data, tmp_path / "certs", "three-party", epochs=1
    )

    assert list(files.parties) == ["alice", "carol", "bob"]
    assert files.carol == tmp_path / "cfg" / "carol.yaml"
    loaded = {name: load_party_config(path) for name, path in files.parties.items()}
    job = load_job_config(files.job)
    assert job.epochs == 1
    assert job.runs_dir == tmp_path / "cfg" / "runs"
    assert job.tls.cert == tmp_path / "certs" / "coordinator.pem"
    assert [p.name for p in job.parties] == ["alice", "carol", "bob"]
    for name, config in loaded.items():
        assert config.party == name
        assert config.data.path == data / f"{name}_3p.csv"
        assert config.output_dir == tmp_path / "cfg" / "runs" / name
        assert config.listen == "127.0.0.1:0"
        assert config.tls.cert == tmp_path / "certs" / f"{name}.pem"
    assert files.read("bob")["model"]["aggregation"] == {
        "method": "sum",
        "secure": True,
    }


def test_addresses_reach_every_party_its_peers_and_the_job(tmp_path):
    files = LocalConfigs.write(tmp_path, tmp_path / "data", layout="three-party")
    addresses = {
        "alice": "127.0.0.1:7001",
        "carol": "127.0.0.1:7003",
        "bob": "127.0.0.1:7002",
    }

    files.set_addresses(addresses)

    configs = {name: load_party_config(path) for name, path in files.parties.items()}
    assert {name: c.listen for name, c in configs.items()} == addresses
    assert [(p.name, p.address, p.identity) for p in configs["bob"].peers] == [
        ("alice", addresses["alice"], "alice"),
        ("carol", addresses["carol"], "carol"),
    ]
    assert [(p.name, p.address) for p in configs["carol"].peers] == [
        ("bob", addresses["bob"])
    ]
    job = load_job_config(files.job)
    assert [(p.name, p.address) for p in job.parties] == [
        (name, addresses[name]) for name in ("alice", "carol", "bob")
    ]
    assert files.read("job")["tls"] == {"insecure": True}


def test_family_and_aggregation_apply_to_all_three(tmp_path):
    files = LocalConfigs.write(tmp_path, tmp_path / "data", layout="three-party")

    files.set_family("dnn", "average")

    assert [load_party_config(p).model.family for p in files.parties.values()] == [
        "dnn"
    ] * 3
    assert load_party_config(files.bob).model.aggregation == "average"
    files.set_family("deepfm")
    assert "aggregation" not in files.read("bob")["model"]
    assert load_party_config(files.carol).model.family == "deepfm"


@pytest.mark.parametrize("layout", ["reference", "bst", "census", "two-tasks"])
def test_two_party_layouts_have_no_carol(tmp_path, layout):
    files = LocalConfigs.write(tmp_path, Path("/data"), layout=layout)

    assert files.carol is None
    assert list(files.parties) == ["alice", "bob"]
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == [
        "alice.yaml",
        "bob.yaml",
        "job.yaml",
    ]
