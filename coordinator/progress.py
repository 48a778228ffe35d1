"""Progress for people: a one-line bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

logger = logging.getLogger(__name__)

_BAR_WIDTH = 28


def _loss(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


class EpochProgress:
    """Shows steps done, samples per second and the running loss of one epoch."""

    def __init__(
        self, epoch: int, epochs: int, steps: int, stream: TextIO | None = None
    ) -> None:
        self._epoch = epoch
        self._epochs = epochs
        self._steps = steps
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()

    def update(
        self,
        step: int,
        samples: int,
        loss: float,
        tasks: dict[str, float] | None = None,
    ) -> None:
        """Steps done, samples so far, the running loss and, in a job of
        several tasks, each task's running loss by name."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = samples / elapsed
        loss_text = _loss(loss) + "".join(
            f" {name} {_loss(value)}" for name, value in (tasks or {}).items()
        )
        if self._tty:
            filled = int(_BAR_WIDTH * step / max(self._steps, 1))
            bar = "#" * filled + "." * (_BAR_WIDTH - filled)
            self._stream.write(
                f"\repoch {self._epoch + 1}/{self._epochs} [{bar}] "
                f"{step}/{self._steps} {rate:,.0f} samples/s loss {loss_text}"
            )
            self._stream.flush()
        else:
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
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
