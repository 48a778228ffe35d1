"""Command line: ``splitrec data census {generate,prepare} ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from splitrec.datasets.census.generate import DATA_ROWS, TEST_ROWS, generate_adult
from splitrec.datasets.census.prepare import prepare_census
from splitrec.datasets.files import DataPreparationError

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splitrec data census",
        description="Generate synthetic UCI Adult files or prepare party CSVs.",
        epilog="Exit codes: 0 written; 2 bad flags, or input files that cannot be "
        "read or prepared (the message names the file and line).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser(
        "generate", help="write adult.data and adult.test in the UCI format"
    )
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    gen.add_argument("--rows", type=int, default=DATA_ROWS, help="adult.data records")
    gen.add_argument(
        "--test-rows", type=int, default=TEST_ROWS, help="adult.test records"
    )
    gen.add_argument("--seed", type=int, default=1234)
    prep = commands.add_parser(
        "prepare", help="write alice_adult.csv and bob_adult.csv from the UCI files"
    )
    prep.add_argument("--source", type=Path, required=True, help="adult.data")
    prep.add_argument("--test", type=Path, help="adult.test (its rows follow)")
    prep.add_argument("--out", type=Path, required=True, help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "generate":
            files = generate_adult(args.out, args.rows, args.test_rows, args.seed)
            print(f"data: {files.data}\ntest: {files.test}")
        else:
            prepared = prepare_census(args.source, args.out, args.test)
            print(
                f"alice: {prepared.alice}\nbob: {prepared.bob}\nrows: {prepared.rows}"
            )
    except (DataPreparationError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
