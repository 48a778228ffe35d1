"""Replays one window of a finished run's training in one process.

Every party's data, model and checkpoint are loaded side by side (a test
federation holds them all), the window's steps run in the order and with the
calls the parties make (a forward at the window's first step, then for each
step the label party's update and each feature party's update fused with its
next forward), and the result is compared bit for bit with the run's next
checkpoint. A run whose window the replay reproduces computed exactly what its
step functions compute; a run it does not reproduce went astray in that window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from baseline.centralized import load_parties
from common.batching import batch_rows, epoch_order, split_rows, steps_per_epoch
from common.config import load_job_config
from common.models.build import build_fuse, build_party_base
from common.models.registry import combined_structure, fuse_outputs
from common.models.steps import BaseStep, FuseStep
from party_server.alignment import aligned_slice, plain_alignment
from party_server.checkpoints import ModelState


def _checkpoint(folder: Path, party: str, job: str, k: int) -> dict[str, np.ndarray]:
    path = folder / "runs" / party / job / "checkpoints" / f"checkpoint-{k:08d}.npz"
    with np.load(path) as stored:
        return {key: stored[key] for key in stored.files}


class Replay:
    """A finished run's federation loaded side by side: every party's aligned
    data, model and step functions, ready to replay any window of the run."""

    def __init__(self, folder: Path) -> None:
        """``folder`` holds the run's ``job.yaml``, one ``<party>.yaml`` per
        party and their ``runs`` (as ``LocalConfigs`` writes them)."""
        self.folder = folder
        job = load_job_config(folder / "job.yaml")
        order = [p.name for p in job.parties]
        parties = load_parties([folder / f"{name}.yaml" for name in order])
        raw = [parties[name][1] for name in order]
        slices = {
            name: aligned_slice(s, rows)
            for name, s, rows in zip(order, raw, plain_alignment(raw), strict=True)
        }
        split = split_rows(slices[order[0]].num_rows, job.validation_fraction, job.seed)
        bases = {}
        for name in order:
            config = parties[name][0]
            features = slices[name].features
            bases[name] = build_party_base(
                name, features, split.train, config.model, job.seed
            )
        outputs = {name: bases[name].output_spec for name in order}
        label = job.label_party
        fused = list(fuse_outputs(outputs))
        self.fuse_step = FuseStep(
            bases[label],
            build_fuse(outputs, parties[label][0].model, job.seed),
            fused.index(label) if label in fused else None,
            job.optimizer,
            job.learning_rate,
        )
        self.senders = [name for name in fused if name != label]
        self.steps = {
            name: BaseStep(bases[name], job.optimizer, job.learning_rate)
            for name in self.senders
        }
        self.states = {
            name: ModelState(
                outputs[name].structure, step.state_variables, step.optimizer.variables
            )
            for name, step in self.steps.items()
        }
        self.states[label] = ModelState(
            combined_structure(list(outputs.values())),
            self.fuse_step.state_variables,
            self.fuse_step.optimizer.variables,
        )
        self.job, self.label, self.slices, self.split = job, label, slices, split

    def checkpoints(self) -> list[int]:
        """The ids of the label party's stored checkpoints, in order."""
        folder = self.folder / "runs" / self.label / self.job.job / "checkpoints"
        return sorted(int(p.stem.split("-")[1]) for p in folder.glob("*.npz"))

    def window(self, checkpoint_id: int) -> str | None:
        """Replays from checkpoint ``checkpoint_id`` to the run's next one;
        None when every party's model and optimizer state then equal that
        checkpoint bit for bit, else the first array that differs."""
        for name, state in self.states.items():
            arrays = _checkpoint(self.folder, name, self.job.job, checkpoint_id)
            state.load(arrays, f"{name}'s checkpoint {checkpoint_id}")
        epoch, first = (int(x) for x in arrays["position"])
        order = epoch_order(self.split.train, self.job.seed, epoch)
        last = steps_per_epoch(order.size, self.job.batch_size)
        following = {
            name: _checkpoint(self.folder, name, self.job.job, checkpoint_id + 1)
            for name in self.states
        }
        next_epoch, next_step = (int(x) for x in following[self.label]["position"])
        if next_epoch == epoch:
            last = next_step
        self._train(order, first, last)
        for name, state in self.states.items():
            for key, value in state.arrays().items():
                if not np.array_equal(value, following[name][key]):
                    return (
                        f"{name}'s {key} after replaying epoch {epoch} steps "
                        f"{first}-{last - 1} from checkpoint {checkpoint_id}"
                    )
        return None

    def first_astray(self) -> str | None:
        """The first window of the run that a replay does not reproduce."""
        ids = self.checkpoints()
        for checkpoint_id in ids[:-1]:
            found = self.window(checkpoint_id)
            if found is not None:
                return found
        return None

    def _train(self, order: np.ndarray, first: int, last: int) -> None:
        """Steps ``first`` to ``last`` - 1 as the parties run a window."""
        size = self.job.batch_size

        def inputs(name: str, step: int):
            return self.slices[name].features.take(batch_rows(order, size, step))

        steps = self.steps
        hiddens = {n: steps[n].forward(inputs(n, first)).numpy() for n in steps}
        labels = self.slices[self.label].labels
        for step in range(first, last):
            _, _, grads = self.fuse_step.train(
                inputs(self.label, step),
                [hiddens[n] for n in self.senders],
                labels[batch_rows(order, size, step)],
            )
            for name, grad in zip(self.senders, grads, strict=True):
                if step + 1 < last:
                    hiddens[name] = (
                        steps[name]
                        .backward_then_forward(
                            inputs(name, step), grad.numpy(), inputs(name, step + 1)
                        )
                        .numpy()
                    )
                else:
                    steps[name].backward(inputs(name, step), grad.numpy())
