"""``privacy.mid``: read from the job config, checked, and carried in the job
spec to every party."""

from __future__ import annotations

import pytest

from splitrec.common.errors import ConfigError, InvalidMessageError
from splitrec.config.job import load_job_config
from splitrec.config.privacy import PrivacySettings
from splitrec.wire import serde
from tests.support import job_with_privacy


def test_the_job_config_turns_mid_on_and_it_is_off_without_it(tmp_path):
    on = load_job_config(
        job_with_privacy(tmp_path, {"mid": {"weight": 0.05, "dim": 8}})
    )
    assert on.privacy.mid and on.privacy.mid_weight == 0.05
    assert on.privacy.mid_dim == 8
    default_dim = load_job_config(job_with_privacy(tmp_path, {"mid": {"weight": 1}}))
    assert default_dim.privacy.mid_dim == 16
    off = load_job_config(job_with_privacy(tmp_path, {"nopeek": 0.5}))
    assert not off.privacy.mid


@pytest.mark.parametrize(
    ("mid", "message"),
    [
        ({"weight": 0}, r"privacy\.mid\.weight.*greater than 0"),
        ({"weight": -1}, r"privacy\.mid\.weight.*greater than 0"),
        ({"weight": ".nan"}, r"privacy\.mid\.weight"),
        ({}, r"privacy\.mid\.weight"),
        ({"weight": 1, "dim": 0}, r"privacy\.mid\.dim.*from 1 to 4096, got 0"),
        ({"weight": 1, "dim": 5000}, r"privacy\.mid\.dim.*from 1 to 4096"),
        ({"weight": 1, "dim": "8"}, r"privacy\.mid\.dim"),
        ({"weight": 1, "width": 8}, r"privacy\.mid\.width"),
        ({"weight": 1, "releases": "eval"}, r"privacy\.mid\.releases.*'eval'.*all"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(tmp_path, mid, message):
    if mid.get("weight") == ".nan":
        mid = {"weight": float("nan")}
    with pytest.raises(ConfigError, match=message):
        load_job_config(job_with_privacy(tmp_path, {"mid": mid}))


def test_the_settings_travel_in_the_privacy_spec():
    settings = PrivacySettings(
        mid_weight=0.25, mid_dim=32, mid_releases="all", nopeek=1.0
    )
    message = serde.privacy_to_proto(settings)
    assert (message.mid_weight, message.mid_dim) == (0.25, 32)
    assert message.mid_releases == "all" and settings.mid_samples_every_release
    assert serde.privacy_from_proto(message) == settings
    assert serde.privacy_from_proto(serde.privacy_to_proto(PrivacySettings())) == (
        PrivacySettings()
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mid_weight", float("inf"), "mid.weight: must be a finite number"),
        ("mid_weight", -2.0, "mid.weight: must be greater than 0"),
        ("mid_dim", 100_000, "mid.dim: must be an integer from 1 to 4096"),
        ("mid_releases", "some", "mid.releases: use one of"),
    ],
)
def test_bad_settings_on_the_wire_are_refused(field, value, message):
    proto = serde.privacy_to_proto(PrivacySettings(mid_weight=1.0))
    setattr(proto, field, value)
    with pytest.raises(InvalidMessageError, match=message):
        serde.privacy_from_proto(proto)
