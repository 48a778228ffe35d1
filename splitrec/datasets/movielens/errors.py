"""Errors raised while fetching or preparing MovieLens data."""

from splitrec.datasets.files import DataPreparationError

__all__ = ["DataPreparationError"]
