"""A party's config written back in its file's layout reads as the same config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from splitrec.config.party import PartyConfig, load_party_config
from splitrec.config.writer import party_layout, write_party_config
from tests.unit.common.test_config import LABEL_PARTY, PARTY
from tests.unit.common.test_serving_config import FEATURE_SERVING, LABEL_SERVING

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(
    p
    for folder in ("configs", "deploy")
    for p in (ROOT / folder).rglob("*.yaml")
    if p.name not in ("job.yaml", "docker-compose.yml")
    and yaml.safe_load(p.read_text()).get("party")
)


def _without_sources(value: object) -> object:
    """A config's dump without the places it was read from."""
    if isinstance(value, dict):
        return {k: _without_sources(v) for k, v in value.items() if k != "source"}
    if isinstance(value, (list, tuple)):
        return [_without_sources(v) for v in value]
    return value


def _same(a: PartyConfig, b: PartyConfig) -> None:
    assert _without_sources(a.model_dump()) == _without_sources(b.model_dump())


def test_every_example_party_config_is_found():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_an_example_config_reads_back_the_same(path: Path, tmp_path: Path):
    config = load_party_config(path)
    written = write_party_config(config, tmp_path / "elsewhere" / "party.yaml")
    _same(config, load_party_config(written))


def test_a_config_built_in_python_is_written_with_its_tls_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    config = PartyConfig.model_validate(
        {
            "party": "bob",
            "data": {"path": "bob.csv", "columns": ["ID", "MovieID", "Rating"]},
            "features": [{"name": "MovieID", "type": "hashed", "bins": 100}],
            "label": {"column": "Rating", "positive_above": 3},
            "model": {"family": "dnn", "deep_units": [16, 8], "fuse_units": [8]},
            "peers": [{"name": "alice", "address": "127.0.0.1:1"}],
        }
    )
    layout = party_layout(config)
    assert layout["tls"] == {"insecure": True}
    assert layout["data"]["path"] == str(tmp_path / "bob.csv")
    assert layout["label"] == {"column": "Rating", "positive_above": 3.0}
    assert layout["features"][0]["type"] == "hashed"
    assert "tasks" not in layout["model"]
    _same(config, load_party_config(write_party_config(config, tmp_path / "b.yaml")))


def test_settings_of_other_families_are_left_out(tmp_path: Path):
    data = copy.deepcopy(PARTY)
    data["model"] = {"family": "dnn", "deep_units": [16, 8]}
    config = PartyConfig.model_validate(data, context={"base": tmp_path})
    # Built in Python, a model may carry a setting its family does not read.
    config = config.model_copy(
        update={"model": config.model.model_copy(update={"attention_heads": 4})}
    )
    layout = party_layout(config)
    assert "attention_heads" not in layout["model"]
    load_party_config(write_party_config(config, tmp_path / "a.yaml"))


@pytest.mark.parametrize(
    ("base", "serving"),
    [(PARTY, FEATURE_SERVING), (LABEL_PARTY, LABEL_SERVING)],
    ids=["feature party", "label party"],
)
def test_a_serving_section_reads_back_the_same(
    base: dict, serving: dict, tmp_path: Path
):
    data = copy.deepcopy(base)
    data["serving"] = copy.deepcopy(serving)
    data["tls"] = {"insecure": True}
    source = tmp_path / "party.yaml"
    source.write_text(yaml.safe_dump(data))
    config = load_party_config(source)
    _same(config, load_party_config(write_party_config(config, tmp_path / "w.yaml")))


def test_several_labels_keep_their_names_and_weights(tmp_path: Path):
    data = copy.deepcopy(LABEL_PARTY)
    data.pop("label", None)
    data["labels"] = [
        {"name": "liked", "column": "Rating", "positive_above": 3},
        {"name": "loved", "column": "Rating", "positive_above": 4, "weight": 0.5},
    ]
    data["model"] = {"family": "mmoe"}
    data["tls"] = {"insecure": True}
    source = tmp_path / "party.yaml"
    source.write_text(yaml.safe_dump(data))
    config = load_party_config(source)
    layout = party_layout(config)
    assert [label["name"] for label in layout["labels"]] == ["liked", "loved"]
    _same(config, load_party_config(write_party_config(config, tmp_path / "w.yaml")))
