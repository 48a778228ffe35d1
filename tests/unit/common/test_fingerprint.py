"""Fingerprints: keyed digests of what a party trains on, by kind."""

from __future__ import annotations

import pytest

from splitrec.common.errors import ConfigError
from splitrec.config.fingerprint import (
    KEY_FILE,
    changes,
    keyed,
    party_key,
    settings_digests,
)
from splitrec.config.model import ModelConfig
from splitrec.config.party import LabelConfig, load_party_config
from tests.support import CONFIGS


@pytest.fixture
def bob():
    return load_party_config(CONFIGS / "bob.yaml")


def test_each_kind_changes_only_with_its_own_settings(bob):
    before = settings_digests(bob)
    label = bob.model_copy(update={"labels": (LabelConfig("Rating", 4.0),)})
    model = bob.model_copy(
        update={"model": ModelConfig(8, (128, 32), (256, 32), tasks=1)}
    )
    features = bob.model_copy(update={"features": bob.features[:1]})
    moved = bob.model_copy(
        update={"listen": "0.0.0.0:1", "output_dir": bob.output_dir / "x"}
    )

    assert settings_digests(label) == {
        **before,
        "label": settings_digests(label)["label"],
    }
    assert settings_digests(label)["label"] != before["label"]
    assert settings_digests(model)["model"] != before["model"]
    assert settings_digests(features)["features"] != before["features"]
    # Where a party listens or writes is not part of what it trains on.
    assert settings_digests(moved) == before


def test_keyed_digests_reveal_nothing_without_the_key(tmp_path):
    digests = {"data": "d", "label": "l"}
    one = keyed(party_key(tmp_path / "a"), digests)
    again = keyed(party_key(tmp_path / "a"), digests)
    other = keyed(party_key(tmp_path / "b"), digests)

    assert one == again  # the key is kept in the folder
    assert one["data"] != other["data"]
    assert "d" not in one.values()
    assert oct((tmp_path / "a" / KEY_FILE).stat().st_mode & 0o777) == "0o600"


def test_a_damaged_key_is_refused_not_replaced(tmp_path):
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(ConfigError, match="is damaged"):
        party_key(tmp_path)


def test_changes_name_the_party_and_the_kind():
    before = {"bob": {"data": "1", "features": "2", "label": "3", "model": "4"}}
    assert changes(before, before) == []
    label = {"bob": {**before["bob"], "label": "x"}}
    assert changes(before, label) == ["bob's label rule"]
    data = {"bob": {**before["bob"], "data": "x", "model": "y"}}
    assert changes(before, data) == ["bob's data file", "bob's model settings"]
    everything = {"bob": {k: "new" for k in before["bob"]}}
    assert "every fingerprint of bob" in changes(before, everything)[0]
