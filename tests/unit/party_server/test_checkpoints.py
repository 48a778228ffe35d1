"""Checkpoint files: atomic, verified by digest, pruned on commit; a crash while
writing leaves the previous checkpoint valid."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from splitrec.common.errors import JobStateError, StorageError
from splitrec.party_server.checkpoints import CheckpointStore, ModelState


def _arrays(value: float) -> dict[str, np.ndarray]:
    return {"position": np.array([0, 4]), "model/0": np.full((2, 3), value)}


def test_save_and_load_round_trip(tmp_path):
    store = CheckpointStore(tmp_path / "ckpt")
    digest, size = store.save(1, _arrays(1.5))
    loaded = store.load(1, digest)
    assert size == store.path(1).stat().st_size
    np.testing.assert_array_equal(loaded["model/0"], np.full((2, 3), 1.5))
    assert oct(store.path(1).stat().st_mode & 0o777) == "0o600"


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    digest, _ = store.save(1, _arrays(1.0))

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="power cut"):
        store.save(2, _arrays(2.0))
    with pytest.raises(StorageError, match="power cut"):
        store.save(1, _arrays(3.0))  # overwriting in place fails too
    monkeypatch.undo()
    assert not store.path(2).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [store.path(1).name]
    np.testing.assert_array_equal(store.load(1, digest)["model/0"], np.ones((2, 3)))


def test_changed_file_is_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    digest, _ = store.save(3, _arrays(1.0))
    store.save(3, _arrays(9.0))
    with pytest.raises(JobStateError, match="the file changed since it was saved"):
        store.load(3, digest)


def test_missing_checkpoint_says_where_it_looked(tmp_path):
    with pytest.raises(
        JobStateError, match="checkpoint 5 is not at .*checkpoint-00000005"
    ):
        CheckpointStore(tmp_path).load(5, "")


def test_commit_keeps_only_the_named_checkpoints(tmp_path):
    store = CheckpointStore(tmp_path)
    for checkpoint_id in range(4):
        store.save(checkpoint_id, _arrays(checkpoint_id))
    (tmp_path / "notes.txt").write_text("mine")
    store.keep_only({2, 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-00000002.npz",
        "checkpoint-00000003.npz",
        "notes.txt",
    ]


def _variables(*shapes: tuple[int, ...]) -> list:
    return [keras.Variable(np.zeros(shape, np.float32)) for shape in shapes]


def test_model_state_round_trips_by_variable_path():
    kernel, bias, slot = _variables((2, 2), (2,), (3,))
    saved = ModelState("abc", [kernel, bias], [slot])
    arrays = saved.arrays()
    assert set(arrays) == {
        "structure",
        f"model/{kernel.path}",
        f"model/{bias.path}",
        f"optimizer/{slot.path}",
    }
    arrays[f"model/{bias.path}"] = np.ones((2,), np.float32)

    saved.load(arrays, "ckpt")

    np.testing.assert_array_equal(bias.numpy(), np.ones(2))


def test_a_checkpoint_of_another_model_changes_nothing_and_says_what_differs():
    kernel, bias, slot = _variables((2, 2), (2,), (3,))
    arrays = ModelState("abc", [kernel], [slot]).arrays()
    arrays[f"model/{kernel.path}"] = np.ones((2, 2), np.float32)
    arrays[f"optimizer/{slot.path}"] = np.ones((4,), np.float32)

    with pytest.raises(JobStateError, match=f"optimizer variable {slot.path} has"):
        ModelState("abc", [kernel], [slot]).load(arrays, "ckpt")
    np.testing.assert_array_equal(kernel.numpy(), np.zeros((2, 2)))
    with pytest.raises(JobStateError) as caught:
        ModelState("abc", [kernel, bias], [slot]).load(arrays, "ckpt")
    assert str(caught.value) == (
        "ckpt was saved by another model: model variables only in the checkpoint: "
        f"none; only in this model: {bias.path}"
    )


def test_a_checkpoint_of_another_structure_is_refused():
    kernel, slot = _variables((2, 2), (3,))
    arrays = ModelState("abc", [kernel], [slot]).arrays()

    with pytest.raises(JobStateError) as caught:
        ModelState("xyz", [kernel], [slot]).load(arrays, "ckpt")

    assert "saved by a model of another structure (digest abc, this model's xyz)" in (
        str(caught.value)
    )
