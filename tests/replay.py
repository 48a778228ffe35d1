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

from splitrec.baseline.centralized import compose, load_parties
from splitrec.common.batching import batch_rows, epoch_order, steps_per_epoch
from splitrec.config.job import load_job_config
from splitrec.models.registry import combined_structure, fuse_outputs
from splitrec.models.steps import BaseStep, FuseStep
from splitrec.party_server.checkpoints import CheckpointStore, ModelState

Arrays = dict[str, np.ndarray]


class Replay:
    """A finished run's federation loaded side by side: every party's aligned
    data, model and step functions, ready to replay any window of the run."""

    def __init__(self, folder: Path) -> None:
        """``folder`` holds the run's ``job.yaml``, one ``<party>.yaml`` per
        party and their ``runs`` (as ``LocalConfigs`` writes them)."""
        self.folder = folder
        job = load_job_config(folder / "job.yaml")
        parties = load_parties([folder / f"{p.name}.yaml" for p in job.parties])
        federation = compose(job, parties)
        outputs = {
            name: base.output_spec
            for name, base in zip(federation.order, federation.bases, strict=True)
        }
        bases = dict(zip(federation.order, federation.bases, strict=True))
        label = job.label_party
        fused = list(fuse_outputs(outputs))
        self.fuse_step = FuseStep(
            bases[label],
            federation.fuse,
            fused.index(label) if label in fused else None,
            job.optimizer,
            job.learning_rate,
            federation.tasks,
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
        self.stores = {
            name: CheckpointStore(folder / "runs" / name / job.job / "checkpoints")
            for name in self.states
        }
        self.job, self.label, self.split = job, label, federation.split
        self.slices = dict(zip(federation.order, federation.slices, strict=True))
        self.labels = federation.labels(job)

    def checkpoints(self) -> list[int]:
        """The ids of the label party's stored checkpoints, in order."""
        found = self.stores[self.label].folder.glob("checkpoint-*.npz")
        return sorted(int(p.stem.split("-")[1]) for p in found)

    def load(self, checkpoint_id: int) -> dict[str, Arrays]:
        """Every party's arrays of one checkpoint."""
        loaded = {}
        for name, store in self.stores.items():
            with np.load(store.path(checkpoint_id)) as stored:
                loaded[name] = {key: stored[key] for key in stored.files}
        return loaded

    def window(self, start: dict[str, Arrays], end: dict[str, Arrays]) -> str | None:
        """Replays from the checkpoint ``start`` (every party's arrays, see
        ``load``) to the run's next one, ``end``; None when every party's model
        and optimizer state then equal ``end`` bit for bit, else the first
        array that differs."""
        for name, state in self.states.items():
            state.load(start[name], f"{name}'s checkpoint")
        epoch, first = (int(x) for x in start[self.label]["position"])
        order = epoch_order(self.split.train, self.job.seed, epoch)
        last = steps_per_epoch(order.size, self.job.batch_size)
        next_epoch, next_step = (int(x) for x in end[self.label]["position"])
        if next_epoch == epoch:
            last = next_step
        self._train(order, first, last)
        for name, state in self.states.items():
            for key, value in state.arrays().items():
                if not np.array_equal(value, end[name][key]):
                    return (
                        f"{name}'s {key} after replaying epoch {epoch} steps "
                        f"{first}-{last - 1}"
                    )
        return None

    def first_astray(self) -> str | None:
        """The first window of the run that a replay does not reproduce."""
        ids = self.checkpoints()
        start = self.load(ids[0])
        for previous, checkpoint_id in zip(ids, ids[1:], strict=False):
            end = self.load(checkpoint_id)
            found = self.window(start, end)
            if found is not None:
                return f"{found} from checkpoint {previous}"
            start = end
        return None

    def _train(self, order: np.ndarray, first: int, last: int) -> None:
        """Steps ``first`` to ``last`` - 1 as the parties run a window."""
        size = self.job.batch_size

        def inputs(name: str, step: int):
            return self.slices[name].features.take(batch_rows(order, size, step))

        steps = self.steps
        hiddens = {n: steps[n].forward(inputs(n, first)).numpy() for n in steps}
        for step in range(first, last):
            *_, grads = self.fuse_step.train(
                inputs(self.label, step),
                [hiddens[n] for n in self.senders],
                self.labels[batch_rows(order, size, step)],
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
