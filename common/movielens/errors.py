"""Errors raised while fetching or preparing MovieLens data."""


class DataPreparationError(Exception):
    """Input data is missing, corrupt or malformed; the message says what to do."""
