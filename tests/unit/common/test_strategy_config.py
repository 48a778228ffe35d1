"""The strategy section: an auto pipeline, its maximum, compensation and a plan
to repeat; each refused with the key and what to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from splitrec.common.errors import ConfigError, InvalidMessageError
from splitrec.config.job import JobConfig, load_job_config
from splitrec.config.jobspec import JobParty, JobSpec, OutputSpec
from splitrec.config.party import PartyRole
from splitrec.coordinator.handshake import _pipeline_plan
from splitrec.wire.serde import job_spec_from_proto, job_spec_to_proto

JOB = {
    "job": "auto",
    "parties": [
        {"name": "alice", "address": "127.0.0.1:50051"},
        {"name": "carol", "address": "127.0.0.1:50053"},
        {"name": "bob", "address": "127.0.0.1:50052"},
    ],
    "label_party": "bob",
    "tls": {"insecure": True},
}


def _job(folder: Path, **strategy: object) -> JobConfig:
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump({**JOB, "strategy": strategy}), encoding="utf-8")
    return load_job_config(path)


def test_auto_with_its_maximum_and_compensation(tmp_path):
    config = _job(
        tmp_path, pipeline_size="auto", max_pipeline_size=12, compensation="predict"
    )
    assert (config.pipeline_size, config.max_pipeline_size) == ("auto", 12)
    assert config.compensation == "predict"
    # The same from Python, with the attribute names.
    built = JobConfig.model_validate(
        {**JOB, "pipeline_size": "auto", "compensation": "predict"}
    )
    assert (built.pipeline_size, built.max_pipeline_size) == ("auto", 16)


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (
            {"pipeline_size": "Auto"},
            "key 'strategy.pipeline_size': must be an integer or 'auto', got 'Auto'",
        ),
        ({"pipeline_size": 2.5}, "must be an integer or 'auto', got 2.5"),
        ({"pipeline_size": 0}, "an integer in [1, 64] or auto"),
        ({"pipeline_size": "auto", "max_pipeline_size": 65}, "max_pipeline_size"),
        ({"compensation": "dc"}, "use one of ('none', 'predict')"),
    ],
)
def test_bad_strategies_are_refused_with_the_key(tmp_path, strategy, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _job(tmp_path, **strategy)


def _plan(folder: Path, plans: dict) -> Path:
    path = folder / "plan.json"
    path.write_text(json.dumps(plans))
    return path


def test_a_plan_is_read_relative_to_the_job_file_and_checked(tmp_path):
    _plan(tmp_path, {"alice": [[0, 1], [32, 6]], "carol": [[0, 2]]})
    config = _job(tmp_path, pipeline_size="auto", pipeline_plan="plan.json")
    assert config.pipeline_plan == tmp_path / "plan.json"
    assert _pipeline_plan(config) == (
        ("alice", 0, 1),
        ("alice", 32, 6),
        ("carol", 0, 2),
    )

    fixed = _job(tmp_path, pipeline_size=4, pipeline_plan="plan.json")
    with pytest.raises(ConfigError, match="a plan is for pipeline_size auto"):
        _pipeline_plan(fixed)
    _plan(tmp_path, {"bob": [[0, 2]]})
    with pytest.raises(ConfigError, match="'bob', not a feature party"):
        _pipeline_plan(_job(tmp_path, pipeline_size="auto", pipeline_plan="plan.json"))
    _plan(tmp_path, {"alice": [[0, 20]]})
    shallow = _job(
        tmp_path, pipeline_size="auto", max_pipeline_size=8, pipeline_plan="plan.json"
    )
    with pytest.raises(ConfigError, match="deeper than strategy.max_pipeline_size 8"):
        _pipeline_plan(shallow)


def test_the_spec_carries_auto_compensation_and_the_plan():
    output = OutputSpec("deepfm", (("deep", 4),), "s")
    spec = JobSpec(
        job_id="auto",
        seed=1,
        batch_size=8,
        epochs=1,
        optimizer="adam",
        learning_rate=0.001,
        validation_fraction=0.1,
        label_party="bob",
        parties=(
            JobParty("alice", PartyRole.FEATURE, output),
            JobParty("bob", PartyRole.LABEL, output),
        ),
        pipeline_size=12,
        pipeline_auto=True,
        compensation="predict",
        pipeline_plan=(("alice", 0, 1), ("alice", 32, 5)),
    )
    assert job_spec_from_proto(job_spec_to_proto(spec)) == spec
    assert spec.plan_of("alice") == {0: 1, 32: 5}
    message = job_spec_to_proto(spec)
    message.compensation = "guess"
    with pytest.raises(InvalidMessageError, match="compensation 'guess'"):
        job_spec_from_proto(message)
    message = job_spec_to_proto(spec)
    message.pipeline_plan[1].step = 33
    with pytest.raises(InvalidMessageError, match="multiple of 32"):
        job_spec_from_proto(message)
