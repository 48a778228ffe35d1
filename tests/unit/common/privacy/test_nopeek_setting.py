"""``privacy.nopeek``: read from the job config, checked, and carried in the
job spec to every party."""

from __future__ import annotations

import pytest

from splitrec.common.errors import ConfigError, InvalidMessageError
from splitrec.config.job import load_job_config
from splitrec.config.privacy import PrivacySettings
from splitrec.wire import serde
from tests.support import job_with_privacy


def test_the_job_config_sets_the_weight_and_it_is_off_without_it(tmp_path):
    on = load_job_config(
        job_with_privacy(tmp_path, {"nopeek": 0.5, "leakage_probe": True})
    )
    assert on.privacy.nopeek == 0.5 and on.privacy.leakage_probe
    off = load_job_config(job_with_privacy(tmp_path, {"leakage_probe": True}))
    assert off.privacy.nopeek == 0.0


def test_a_negative_weight_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"privacy\.nopeek.*0 \(off\) or more"):
        load_job_config(job_with_privacy(tmp_path, {"nopeek": -1}))


def test_the_weight_travels_in_the_privacy_spec():
    settings = PrivacySettings(nopeek=0.25, gradient_defense="directional")
    message = serde.privacy_to_proto(settings)
    assert message.nopeek == 0.25
    assert serde.privacy_from_proto(message) == settings


def test_a_bad_weight_on_the_wire_is_refused():
    message = serde.privacy_to_proto(PrivacySettings())
    message.nopeek = float("nan")
    with pytest.raises(InvalidMessageError, match="nopeek: must be a finite number"):
        serde.privacy_from_proto(message)
