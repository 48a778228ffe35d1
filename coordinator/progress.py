"""Progress for people: a tqdm bar in a terminal or a notebook, plain log lines
otherwise (logs, CI, pipes)."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

from tqdm import tqdm

logger = logging.getLogger(__name__)


def _loss(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython kernel shell)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from ipykernel.zmqshell import ZMQInteractiveShell
        from IPython import get_ipython
    except ImportError:
        return False
    return isinstance(get_ipython(), ZMQInteractiveShell)


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def bar_class(stream: TextIO) -> type[tqdm] | None:
    """The bar to draw on ``stream``: the notebook's widget bar in a Jupyter
    kernel with ipywidgets, the text bar in a kernel without it or on a
    terminal, and none (log lines) anywhere else."""
    if in_notebook():
        if _has_widgets():
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
        return tqdm
    return tqdm if stream.isatty() else None


class EpochProgress:
    """Shows steps done, samples per second and the running loss of one epoch."""

    def __init__(
        self, epoch: int, epochs: int, steps: int, stream: TextIO | None = None
    ) -> None:
        self._epoch = epoch
        self._epochs = epochs
        self._steps = steps
        self._stream = stream or sys.stderr
        self._started = time.monotonic()
        self._finished = False
        kind = bar_class(self._stream)
        self._bar: tqdm | None = None
        if kind is not None:
            self._bar = kind(
                total=steps if steps > 0 else None,
                desc=f"epoch {epoch + 1}/{epochs}",
                unit="step",
                file=self._stream,
                leave=True,
                dynamic_ncols=True,
            )

    def update(
        self,
        step: int,
        samples: int,
        loss: float,
        tasks: dict[str, float] | None = None,
    ) -> None:
        """Steps done, samples so far, the running loss and, in a job of
        several tasks, each task's running loss by name."""
        if self._finished:
            return
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = samples / elapsed
        loss_text = _loss(loss) + "".join(
            f" {name} {_loss(value)}" for name, value in (tasks or {}).items()
        )
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"{rate:,.0f} samples/s, loss {loss_text}", refresh=False
            )
            # tqdm redraws at most every mininterval; close() draws the last state.
            self._bar.update(step - self._bar.n)
            return
        logger.info(
            "epoch %d/%d: %d/%d steps, %.0f samples/s, loss %s",
            self._epoch + 1,
            self._epochs,
            step,
            self._steps,
            rate,
            loss_text,
        )

    def finish(self) -> None:
        """Closes the bar (once); later calls and updates do nothing."""
        if self._finished:
            return
        self._finished = True
        if self._bar is not None:
            self._bar.close()
