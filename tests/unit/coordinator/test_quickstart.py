"""``splitrec demo`` without configs: data, certificates and configs in one folder."""

from __future__ import annotations

import pytest
import yaml

from splitrec.config.job import load_job_config
from splitrec.config.party import load_party_config
from splitrec.coordinator.quickstart import prepare_quickstart

RATINGS = 12_080  # the fewest the generator makes (2 per user)


def test_the_example_job_gets_its_data_certificates_and_configs(tmp_path):
    configs = prepare_quickstart(tmp_path / "work", ratings=RATINGS)

    work = (tmp_path / "work").resolve()
    assert configs.folder == work / "reference"
    assert set(configs.parties) == {"alice", "bob"}
    alice = load_party_config(configs.alice)
    assert alice.data.path == work / "data" / "alice_ml1m.csv"
    assert alice.data.path.is_file()
    assert alice.tls.cert == work / "certs" / "alice.pem"
    assert alice.tls.cert.is_file()
    job = load_job_config(configs.job)
    assert job.runs_dir == work / "reference" / "runs"
    assert job.tls.cert == work / "certs" / "coordinator.pem"


def test_a_second_demo_keeps_what_is_there_edited_configs_too(tmp_path):
    first = prepare_quickstart(tmp_path, ratings=RATINGS)
    data = first.read("alice")["data"]["path"]
    stamp = (tmp_path / "data" / "alice_ml1m.csv").stat().st_mtime_ns
    ca = (tmp_path / "certs" / "ca.pem").read_bytes()
    first.edit("job", epochs=2)

    again = prepare_quickstart(tmp_path, ratings=RATINGS)

    assert again.read("job")["epochs"] == 2
    assert again.read("alice")["data"]["path"] == data
    assert (tmp_path / "data" / "alice_ml1m.csv").stat().st_mtime_ns == stamp
    assert (tmp_path / "certs" / "ca.pem").read_bytes() == ca


def test_each_layout_has_its_own_configs_and_runs_beside_the_shared_data(tmp_path):
    reference = prepare_quickstart(tmp_path, ratings=RATINGS)
    three = prepare_quickstart(tmp_path, layout="three-party", ratings=RATINGS)

    assert three.folder == tmp_path.resolve() / "three-party"
    assert set(three.parties) == {"alice", "carol", "bob"}
    assert (tmp_path / "certs" / "carol.pem").is_file()
    assert (tmp_path / "data" / "carol_3p.csv").is_file()
    assert reference.read("job")["job"] != yaml.safe_load(three.job.read_text())["job"]
    assert load_job_config(three.job).runs_dir == three.folder / "runs"


def test_an_unknown_layout_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown layout 'nope'; choose one of"):
        prepare_quickstart(tmp_path, layout="nope")
    assert not any(tmp_path.iterdir())
