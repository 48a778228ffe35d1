"""Logging set-up for entry points (``__main__`` modules only)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(text: str) -> str:
    """An argparse ``type=`` for ``--log-level``: one of ``LEVELS``, any case."""
    if text.upper() not in LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a log level: use one of {', '.join(LEVELS)}"
        )
    return text.upper()


def configure_logging(level: str | None = None) -> None:
    """Plain lines on stderr; the level from the flag, else ``SPLITREC_LOG_LEVEL``."""
    chosen = (level or os.environ.get("SPLITREC_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, chosen, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # TensorFlow's C++ logs are noise for people running a job.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
