"""The ``serving`` section of a party's config."""

from __future__ import annotations

import copy

import pytest
import yaml

from splitrec.common.errors import ConfigError
from splitrec.config.party import load_party_config
from tests.unit.common.test_config import LABEL_PARTY, PARTY

FEATURE_SERVING = {
    "model": {"job": "deepfm-ml1m", "version": "epoch-5"},
    "table": {"path": "users.csv", "key": "UserID"},
}
LABEL_SERVING = {
    "model": {"job": "deepfm-ml1m", "version": "epoch-5"},
    "table": {"path": "movies.csv", "key": "MovieID"},
    "clients": ["scorer"],
}


def _load(tmp_path, base: dict, serving: dict):
    data = copy.deepcopy(base)
    data["serving"] = serving
    path = tmp_path / "party.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_party_config(path)


def _error(tmp_path, base: dict, serving: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, base, serving)
    return str(caught.value)


def test_a_feature_party_answers_its_only_peer_and_defaults_apply(tmp_path):
    config = _load(tmp_path, PARTY, FEATURE_SERVING)
    serving = config.serving
    assert (serving.job, serving.version, serving.key) == (
        "deepfm-ml1m",
        "epoch-5",
        "UserID",
    )
    assert serving.table == (tmp_path / "users.csv").resolve()
    assert serving.label_party == "bob" and serving.push is False
    assert serving.reload_seconds == 2.0


def test_a_label_party_lists_its_clients_and_sizes_its_cache(tmp_path):
    settings = {**LABEL_SERVING, "cache": {"entries": 0, "seconds": 5}, "max_rows": 7}
    serving = _load(tmp_path, LABEL_PARTY, settings).serving
    assert serving.clients == ("scorer",)
    assert (serving.cache_entries, serving.cache_seconds) == (0, 5.0)
    assert serving.max_rows == 7


@pytest.mark.parametrize(
    ("base", "changes", "message"),
    [
        (
            LABEL_PARTY,
            {"clients": None},
            "'serving.clients': list the client identities",
        ),
        (LABEL_PARTY, {"push": True}, "'serving.push': only a feature party sets it"),
        (PARTY, {"clients": ["x"]}, "'serving.clients': only the label party serves"),
        (PARTY, {"label_party": "carol"}, "name the label party this party answers"),
        (PARTY, {"model": {"job": "../x", "version": "v"}}, "is not a safe name"),
        (LABEL_PARTY, {"max_rows": 0}, "'serving.max_rows': 0 is outside"),
        (
            LABEL_PARTY,
            {"cache": {"entries": -1}},
            "'serving.cache.entries': -1 is outside",
        ),
        (PARTY, {"reload_seconds": 0}, "'serving.reload_seconds': 0 is outside"),
        (PARTY, {"tables": {}}, "'serving.tables': unknown key"),
    ],
)
def test_bad_serving_settings_are_named(tmp_path, base, changes, message):
    settings = copy.deepcopy(LABEL_SERVING if base is LABEL_PARTY else FEATURE_SERVING)
    settings.update(changes)
    settings = {k: v for k, v in settings.items() if v is not None}
    assert message in _error(tmp_path, base, settings)
