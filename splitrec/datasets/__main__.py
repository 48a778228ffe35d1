"""``splitrec data movielens|census|parquet ...``: a data set's files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DATA_SETS = {
    "movielens": (
        "splitrec.datasets.movielens.__main__",
        "MovieLens-1M: generate files of its format, prepare the parties' CSVs, "
        "write entity tables",
    ),
    "census": (
        "splitrec.datasets.census.__main__",
        "UCI Adult: generate files of its format, prepare the parties' CSVs",
    ),
    "parquet": (
        "splitrec.datasets.parquet",
        "any party CSV as a Parquet dataset (a folder of shards)",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Hands the command line to the data set's own commands."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in DATA_SETS:
        from splitrec.cli import hand_over

        return hand_over(DATA_SETS[args[0]][0], args[1:])
    parser = argparse.ArgumentParser(
        prog="splitrec data",
        description="Generate or prepare the files of a data set.",
        epilog="`splitrec data DATASET --help` shows its commands. Exit codes: 0 "
        "done; 2 bad flags or input files that cannot be read or prepared.",
    )
    sets = parser.add_subparsers(dest="data_set", required=True, metavar="DATASET")
    for name, (_, help_text) in DATA_SETS.items():
        sets.add_parser(name, help=help_text, add_help=False)
    parser.parse_args(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
