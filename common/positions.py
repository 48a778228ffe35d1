"""How messages and logs name a place in a job's training.

Epochs are counted from 1 for people, as in ``history.json``, the progress
line and ``export --epoch``; the wire, checkpoint files and manifests count
them from 0. Steps are counted from 0 within their epoch everywhere: a window
is "epoch 1, steps 0..99", a checkpoint "at epoch 2 step 40" holds the state
before that epoch's step 40 (after its steps 0..39).
"""

from __future__ import annotations


def at(epoch: int, step: int) -> str:
    """``epoch`` (0-based, as on the wire) and ``step`` as people read them."""
    return f"epoch {epoch + 1} step {step}"


def epoch_outside(epoch: int, epochs: int) -> str:
    """Why ``epoch`` (0-based) is not one of a job's ``epochs``."""
    return f"epoch {epoch + 1} is outside the job's epochs 1..{epochs}"
