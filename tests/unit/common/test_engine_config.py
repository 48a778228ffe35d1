"""The ``engine`` section of a party's config, and which engine a table gets."""

from __future__ import annotations

import copy
import logging

import pytest
import yaml

from splitrec.common.errors import ConfigError
from splitrec.config.engine import EngineConfig
from splitrec.config.party import load_party_config
from splitrec.engine import PartyEngine
from splitrec.engine import choice as choice_module
from tests.unit.common.test_config import PARTY


def _load(tmp_path, engine: object):
    data = copy.deepcopy(PARTY)
    data["engine"] = engine
    path = tmp_path / "party.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_party_config(path)


def _error(tmp_path, engine: object) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, engine)
    return str(caught.value)


def test_without_a_section_large_tables_get_a_local_instance(tmp_path):
    data = copy.deepcopy(PARTY)
    path = tmp_path / "party.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_party_config(path).engine

    assert config == EngineConfig()
    assert (config.address, config.min_rows, config.named) == (None, 1_000_000, False)


def test_a_written_section_is_read(tmp_path):
    config = _load(
        tmp_path,
        {"address": "ray://head.lake:10001", "min_rows": 0, "connect_seconds": 5},
    ).engine

    assert config.named
    assert (config.address, config.min_rows, config.connect_seconds) == (
        "ray://head.lake:10001",
        0,
        5.0,
    )


@pytest.mark.parametrize(
    ("engine", "key", "expected"),
    [
        ({"address": "headnode"}, "engine.address", "must be host:port"),
        ({"address": "ray://head"}, "engine.address", "must be host:port"),
        ({"address": "head:99999"}, "engine.address", "port"),
        ({"address": "head:http"}, "engine.address", "must end in a port number"),
        ({"node_address": "10.0.0.7:6379"}, "engine.node_address", "without a port"),
        ({"min_rows": -1}, "engine.min_rows", ""),
        ({"cpus": 0}, "engine.cpus", ""),
        ({"clusters": 2}, "engine.clusters", "unknown key"),
    ],
)
def test_a_bad_setting_is_named_by_its_key(tmp_path, engine, key, expected):
    message = _error(tmp_path, engine)

    assert f"key '{key}'" in message
    assert expected in message


def test_small_tables_stay_in_the_party_and_start_nothing():
    engine = PartyEngine(EngineConfig(min_rows=1000), "party bob")
    engine.start()  # nothing named: nothing to reach

    assert engine.for_rows(999) is None
    assert engine.running is None
    engine.close()


def test_without_ray_a_large_table_stays_in_the_party_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(choice_module.importlib.util, "find_spec", lambda name: None)
    engine = PartyEngine(EngineConfig(min_rows=10), "party bob (bob.yaml)")

    with caplog.at_level(logging.WARNING):
        assert engine.for_rows(10) is None
        assert engine.for_rows(20) is None

    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # said once
    assert "party bob (bob.yaml): a table of 10 rows" in warnings[0]
    assert "pip install 'splitrec[engine]'" in warnings[0]
