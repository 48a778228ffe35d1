"""Errors raised while fetching or preparing MovieLens data."""

from common.data_files import DataPreparationError

__all__ = ["DataPreparationError"]
