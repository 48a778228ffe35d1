"""MovieLens-1M tooling: a synthetic ml-1m generator and the party-CSV preparation.

Run ``splitrec data movielens --help`` for the command line.
"""

from splitrec.datasets.movielens.download import (
    ML1M_SHA256,
    ML1M_URL,
    download_ml1m,
    verify_sha256,
)
from splitrec.datasets.movielens.errors import DataPreparationError
from splitrec.datasets.movielens.generate import GeneratedFiles, generate_ml1m
from splitrec.datasets.movielens.prepare import PreparedFiles, prepare_party_csvs

__all__ = [
    "ML1M_SHA256",
    "ML1M_URL",
    "DataPreparationError",
    "GeneratedFiles",
    "PreparedFiles",
    "download_ml1m",
    "generate_ml1m",
    "prepare_party_csvs",
    "verify_sha256",
]
