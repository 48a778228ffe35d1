"""The allowed range of every number a config file or a flag can set.

One table per file kind; the config readers, the command-line flags and the
validation of a finished config all check the same ``Limit``, so an error names
the key (or the flag), the value and the range.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

INT32_MAX = 2**31 - 1
# A week: longer waits are surely a typo.
MAX_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Limit:
    """A closed range ``[low, high]``; ``above`` makes the low end open."""

    low: float
    high: float
    integer: bool = False
    above: bool = False
    # Words allowed instead of a number (``auto``).
    words: tuple[str, ...] = ()

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low = "(" if self.above else "["
        text = f"{kind} in {low}{_show(self.low)}, {_show(self.high)}]"
        return " or ".join([text, *self.words])

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not allowed (``None``: it is)."""
        if isinstance(value, str) and value in self.words:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be {self.describe()}, got {value!r}"
        if self.integer and not isinstance(value, int):
            return f"must be {self.describe()}, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number ({self.describe()}), got {value}"
        too_low = value <= self.low if self.above else value < self.low
        if too_low or value > self.high:
            return f"{_show(value)} is outside the allowed range: {self.describe()}"
        return None


def _show(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def count(low: int, high: int = INT32_MAX) -> Limit:
    return Limit(low, high, integer=True)


def seconds() -> Limit:
    return Limit(0.0, MAX_SECONDS, above=True)


# Job config: attribute of ``JobConfig`` -> (key in the file, limit).
JOB_LIMITS: dict[str, tuple[str, Limit]] = {
    "epochs": ("epochs", count(1, 100_000)),
    "batch_size": ("batch_size", count(1, 1_000_000)),
    "seed": ("seed", count(0, 2**63 - 1)),
    "learning_rate": ("optimizer.learning_rate", Limit(0.0, 10.0, above=True)),
    "validation_fraction": ("validation_fraction", Limit(0.0, 0.99, above=True)),
    "steps_per_window": ("steps_per_window", count(0)),
    "report_every": ("report_every", count(1)),
    "pipeline_size": (
        "strategy.pipeline_size",
        Limit(1, 64, integer=True, words=("auto",)),
    ),
    "max_pipeline_size": ("strategy.max_pipeline_size", count(1, 64)),
    "local_steps": ("strategy.local_steps", count(1, 1024)),
    "pipeline_warmup_steps": ("strategy.warmup_steps", count(0)),
    "connect_timeout": ("connect_timeout", seconds()),
    "rpc_timeout": ("rpc_timeout", seconds()),
    "align_timeout": ("align_timeout", seconds()),
    "compression_ratio": ("compression.ratio", Limit(0.0, 1.0, above=True)),
    "checkpoint_every": ("checkpoint.every_steps", count(0)),
    "keep_checkpoints": ("checkpoint.keep", count(1, 1000)),
    "max_recoveries": ("recovery.max_attempts", count(0, 1000)),
    "recovery_timeout": ("recovery.timeout", seconds()),
}


def job_limit_problems(values: object) -> list[tuple[str, str]]:
    """``(key, problem)`` for each number of a job (its config or its spec:
    whichever of ``JOB_LIMITS``' attributes it has) outside its limit."""
    found = []
    for attribute, (key, limit) in JOB_LIMITS.items():
        if hasattr(values, attribute):
            problem = limit.problem(getattr(values, attribute))
            if problem is not None:
                found.append((key, problem))
    return found


# Party config: key -> limit.
PARTY_LIMITS: dict[str, Limit] = {
    "bins": count(1, 100_000_000),
    "max_length": count(1, 1024),
    "fill": Limit(-1e30, 1e30),
    "attention_heads": count(1, 64),
    "transformer_blocks": count(1, 16),
    "embedding_dim": count(1, 1024),
    "units": count(1, 65_536),
    "positive_above": Limit(-1e300, 1e300),
    "weight": Limit(0.0, 1e6, above=True),
    "experts": count(1, 64),
}

# party_server flags.
PEER_TIMEOUT = seconds()
THREADS = count(0, 1024)
# A port to listen on (0: any free one) and one to call.
LISTEN_PORT = count(0, 65_535)
CALL_PORT = count(1, 65_535)


def address_problem(address: str, port: Limit) -> str | None:
    """Why ``address`` is not ``host:port`` with a port within ``port``
    (``None``: it is, or it is another kind of gRPC target, such as ``unix:``)."""
    host, sep, digits = address.rpartition(":")
    if not sep or not host:
        return f"must be host:port, got {address!r}"
    if not (digits.isascii() and digits.isdigit()):
        return None
    problem = port.problem(int(digits))
    return None if problem is None else f"port {problem} (in {address!r})"


def address_flag(port: Limit) -> Callable[[str], str]:
    """An argparse ``type=`` for a ``host:port`` flag (see ``flag_type``)."""

    def parse(text: str) -> str:
        problem = address_problem(text, port)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return text

    return parse


def flag_type(limit: Limit, kind: type = int) -> Callable[[str], float]:
    """An argparse ``type=`` that reads a number and checks it against ``limit``;
    argparse then names the flag in its error and exits with code 2."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {limit.describe()}, got {text!r}"
            ) from None
        problem = limit.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse
