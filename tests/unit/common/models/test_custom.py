"""Models users write themselves: what a party refuses, naming its config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitrec.common.errors import ConfigError
from splitrec.config.model import ModelConfig
from splitrec.models.build import build_base, described_output
from splitrec.models.features import INDEX, FeatureShape

SHAPES = (FeatureShape("user", INDEX, 10),)
GOOD = """
import keras
import tensorflow as tf

def base(inputs, width, seed):
    x = keras.Input(shape=(), dtype="int32", name=inputs[0].name)
    v = keras.layers.Embedding(inputs[0].size, 4)(x)
    return keras.Model({inputs[0].name: x}, keras.layers.Dense(width)(v))

def three_wide(inputs, width, seed):
    return base(inputs, 3, seed)

def boom(inputs, width, seed):
    raise ValueError("boom")

def not_a_model(inputs, width, seed):
    return 42

def summed(inputs, width, seed):
    x = keras.Input(shape=(), dtype="int32", name=inputs[0].name)
    parts = [keras.layers.Embedding(inputs[0].size, width)(x) for _ in range(3)]
    added = keras.layers.Lambda(lambda p: tf.add_n(p))(parts)
    return keras.Model({inputs[0].name: x}, added)

fuse_value = 1
"""


def _model(folder: Path, base: str, fuse: str = "") -> ModelConfig:
    return ModelConfig(
        8, (4,), family="custom", base=base, fuse=fuse, output_width=16, code=folder
    )


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "mine.py").write_text(GOOD)
    (tmp_path / "broken.py").write_text("def base(:\n")
    return tmp_path


def _refusal(model: ModelConfig) -> str:
    with pytest.raises(ConfigError) as caught:
        described_output("alice", SHAPES, model, Path("/etc/alice.yaml"))
    return str(caught.value)


def test_a_good_custom_base_describes_its_width_and_structure(code):
    output = described_output("alice", SHAPES, _model(code, "mine:base"), Path("x"))

    assert output.family == "custom" and output.parts == (("out", 16),)
    assert len(output.structure) == 32
    again = build_base("alice", SHAPES, _model(code, "mine:base"), job_seed=7)
    assert again.output_spec == output  # paths and shapes do not follow the seed


@pytest.mark.parametrize(
    ("base", "fuse", "needle"),
    [
        ("nope:base", "", "model.base 'nope:base': no module 'nope' at "),
        ("mine:absent", "", "model.base 'mine:absent': module 'mine' has no function"),
        ("mine:fuse_value", "", "has no function 'fuse_value'"),
        ("mine:boom", "", "model.base 'mine:boom' raised ValueError: boom"),
        ("mine:not_a_model", "", "raised TypeError: it returned int, not a keras"),
        ("mine:three_wide", "", "has shape (0, 3) for an empty batch, not (0, 16)"),
        ("broken:base", "", "importing "),
        ("mine:base", "mine:absent", "model.fuse 'mine:absent': module 'mine' has no"),
    ],
)
def test_a_party_refuses_a_custom_model_naming_its_config(code, base, fuse, needle):
    message = _refusal(_model(code, base, fuse))

    assert message.startswith("/etc/alice.yaml: model.")
    assert needle in message


def test_a_custom_base_that_sums_with_add_n_is_warned_about(code, caplog):
    build_base("alice", SHAPES, _model(code, "mine:base"), job_seed=7)
    assert "tf.add_n" not in caplog.text

    build_base("alice", SHAPES, _model(code, "mine:summed"), job_seed=7)

    assert "model.base 'mine:summed' adds three or more tensors" in caplog.text
    assert "splitrec.models.determinism.ordered_sum" in caplog.text
