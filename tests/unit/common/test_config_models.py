"""The config models: built in Python as from a file, their JSON Schema, and
the shipped configs against it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from splitrec.common.errors import ConfigError
from splitrec.config.features import FeatureConfig
from splitrec.config.job import JobConfig, load_job_config
from splitrec.config.model import ModelConfig
from splitrec.config.party import (
    DataConfig,
    JobPartyConfig,
    LabelConfig,
    PartyConfig,
    PeerConfig,
    load_party_config,
)
from splitrec.config.schema import json_schema
from splitrec.config.tls import TlsConfig

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted(
    path
    for folder in ("configs", "examples", "deploy")
    if (ROOT / folder).is_dir()
    for path in (ROOT / folder).rglob("*.y*ml")
)

LABEL_PARTY = {
    "party": "bob",
    "listen": "127.0.0.1:50052",
    "data": {"path": "bob.csv", "columns": ["ID", "MovieID", "Genres", "Rating"]},
    "features": [
        {"name": "MovieID", "type": "hashed", "bins": 50},
        {
            "name": "Genres",
            "type": "multi_hot",
            "vocabulary": ["Action", "Drama"],
            "separator": "|",
        },
    ],
    "labels": [
        {"name": "liked", "column": "Rating", "positive_above": 3},
        {"name": "loved", "column": "Rating", "positive_above": 4, "weight": 0.5},
    ],
    "model": {
        "family": "mmoe",
        "embedding_dim": 4,
        "deep_units": [8, 2],
        "expert_units": [4],
        "experts": 2,
        "aggregation": {"method": "sum", "secure": True},
    },
    "peers": [{"name": "alice", "address": "127.0.0.1:50051"}],
    "output_dir": "out",
    "datasets": {"later": "later.csv"},
    "tls": {"insecure": True},
}

JOB = {
    "job": "two-tasks",
    "parties": [
        {"name": "alice", "address": "127.0.0.1:50051"},
        {"name": "bob", "address": "127.0.0.1:50052", "identity": "bob.example"},
    ],
    "label_party": "bob",
    "epochs": 3,
    "optimizer": {"name": "sgd", "learning_rate": 0.5},
    "strategy": {"pipeline_size": 2, "warmup_steps": 10},
    "checkpoint": {"every_steps": 100, "keep": 2},
    "privacy": {"embedding_dp": {"clip_norm": 1, "noise_multiplier": 0.5}},
    "runs_dir": "runs",
    "tls": {"insecure": True},
}


def _write(folder: Path, data: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _without_sources(config: PartyConfig | JobConfig) -> dict:
    """The config's values but where it was read from."""
    values = config.model_dump()
    values.pop("source")
    values["tls"].pop("source")
    return values


def test_a_party_config_built_in_python_equals_the_one_read_from_its_file(
    tmp_path, monkeypatch
):
    loaded = load_party_config(_write(tmp_path, LABEL_PARTY))
    monkeypatch.chdir(tmp_path)

    built = PartyConfig(
        party="bob",
        listen="127.0.0.1:50052",
        data=DataConfig(path="bob.csv", columns=("ID", "MovieID", "Genres", "Rating")),
        features=(
            FeatureConfig(name="MovieID", kind="hashed", bins=50),
            FeatureConfig(
                name="Genres",
                kind="multi_hot",
                vocabulary=("Action", "Drama"),
                separator="|",
            ),
        ),
        labels=(
            LabelConfig(name="liked", column="Rating", positive_above=3),
            LabelConfig(name="loved", column="Rating", positive_above=4, weight=0.5),
        ),
        model=ModelConfig(
            family="mmoe",
            embedding_dim=4,
            deep_units=(8, 2),
            expert_units=(4,),
            experts=2,
            aggregation="sum",
            secure_aggregation=True,
            tasks=2,
        ),
        peers=(PeerConfig(name="alice", address="127.0.0.1:50051"),),
        output_dir="out",
        datasets={"later": "later.csv"},
        tls=TlsConfig(insecure=True),
    )
    validated = PartyConfig.model_validate(LABEL_PARTY, context={"base": tmp_path})

    assert _without_sources(built) == _without_sources(loaded)
    assert _without_sources(validated) == _without_sources(loaded)
    assert built.model.code is None and built.labels[1].key == "labels[1]"
    assert loaded.model.aggregation == "sum" and loaded.model.secure_aggregation


def test_a_job_config_built_in_python_equals_the_one_read_from_its_file(
    tmp_path, monkeypatch
):
    path = _write(tmp_path, JOB)
    loaded = load_job_config(path)
    monkeypatch.chdir(tmp_path)

    built = JobConfig(
        job="two-tasks",
        parties=(
            JobPartyConfig("alice", "127.0.0.1:50051"),
            JobPartyConfig("bob", "127.0.0.1:50052", identity="bob.example"),
        ),
        label_party="bob",
        epochs=3,
        optimizer="sgd",
        learning_rate=0.5,
        pipeline_size=2,
        pipeline_warmup_steps=10,
        checkpoint_every=100,
        keep_checkpoints=2,
        privacy={"embedding_dp": {"clip_norm": 1, "noise_multiplier": 0.5}},
        tls=TlsConfig(insecure=True),
        source=path,
    )

    assert _without_sources(built) == _without_sources(loaded)
    assert _without_sources(JobConfig.model_validate(JOB)) == _without_sources(loaded)
    assert loaded.privacy.embedding_dp and loaded.privacy.clip_norm == 1.0


def test_a_config_built_in_python_is_refused_as_a_file_is_without_the_file():
    with pytest.raises(ConfigError) as caught:
        FeatureConfig(name="Age", kind="hashed", bins=-1)
    assert str(caught.value).startswith("key 'bins': -1 is outside the allowed range")

    with pytest.raises(ConfigError) as caught:
        JobConfig.model_validate({**JOB, "recovery": {"attempts": 3}})
    assert str(caught.value) == (
        "key 'recovery.attempts': unknown key; did you mean 'max_attempts'? the "
        "keys allowed here are: max_attempts, timeout"
    )


def test_the_configs_are_frozen(tmp_path):
    config = load_party_config(_write(tmp_path, LABEL_PARTY))

    with pytest.raises(ValueError, match="frozen"):
        config.party = "carol"


def test_relative_paths_built_in_python_resolve_from_the_given_base(tmp_path):
    data = DataConfig.model_validate({"path": "x.csv"}, context={"base": tmp_path})

    assert data.path == tmp_path / "x.csv"


@pytest.mark.parametrize("kind", ["party", "job"])
def test_the_json_schema_is_a_valid_draft_2020_12_schema_that_describes_every_key(
    kind,
):
    schema = json_schema(kind)

    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    undescribed = [
        f"{owner}.{key}"
        for owner, section in [("", schema), *schema["$defs"].items()]
        for key, field in section.get("properties", {}).items()
        if not field.get("description")
        and not schema["$defs"]
        .get(field.get("$ref", "#/").rsplit("/", 1)[1], {})
        .get("description")
    ]
    assert undescribed == []


def test_the_schema_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="use one of"):
        json_schema("coordinator")  # type: ignore[arg-type]


def _kind(path: Path) -> str:
    return (
        "job"
        if "job" in yaml.safe_load(path.read_text(encoding="utf-8"))
        else ("party")
    )


def test_the_repository_ships_configs_of_both_kinds():
    assert {_kind(path) for path in SHIPPED} == {"party", "job"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_validates_against_the_schema_and_the_models(path):
    kind = _kind(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))

    load = load_job_config if kind == "job" else load_party_config
    load(path)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(json_schema(kind)).validate(data)
    # Editors find the schema from the first line, and it is the one written.
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix), (path, first)
    named = (path.parent / first[len(prefix) :]).resolve()
    assert named == ROOT / "configs" / "schema" / f"{kind}.json", (path, named)


@pytest.mark.parametrize("kind", ["party", "job"])
def test_the_committed_schema_files_are_the_models_schemas(kind):
    written = json.loads((ROOT / "configs" / "schema" / f"{kind}.json").read_text())
    assert written == json_schema(kind), (
        f"configs/schema/{kind}.json is out of date: run `make schemas`"
    )


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("party", {**LABEL_PARTY, "bogus": 1}),
        ("job", {**JOB, "epochs": "five"}),
        ("job", {**JOB, "optimizer": {"name": "sgd", "momentum": 0.9}}),
    ],
)
def test_the_schema_refuses_what_the_models_refuse(kind, data):
    jsonschema = pytest.importorskip("jsonschema")

    assert not jsonschema.Draft202012Validator(json_schema(kind)).is_valid(data)
