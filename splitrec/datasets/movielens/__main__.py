"""Command line: ``splitrec data movielens {generate,prepare,tables} ...``."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from splitrec.datasets.movielens.download import ML1M_SHA256, ML1M_URL, download_ml1m
from splitrec.datasets.movielens.errors import DataPreparationError
from splitrec.datasets.movielens.generate import generate_ml1m
from splitrec.datasets.movielens.prepare import (
    DEFAULT_SEQUENCE_LENGTH,
    LAYOUTS,
    prepare_party_csvs,
)
from splitrec.datasets.movielens.tables import (
    MOVIES_CSV,
    USERS_CSV,
    write_entity_tables,
)

EXIT_ERROR = 2
DEFAULT_CACHE = Path.home() / ".cache" / "splitrec" / "movielens"


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for both subcommands."""
    parser = argparse.ArgumentParser(
        prog="splitrec data movielens",
        description="Generate synthetic MovieLens-1M data or prepare party CSVs.",
        epilog="Exit codes: 0 written; 2 bad flags, or input files that cannot be "
        "read, downloaded or prepared (the message names the file and line).",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write synthetic ml-1m .dat files")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    gen.add_argument("--num-ratings", type=int, default=1_000_209)
    gen.add_argument("--seed", type=int, default=1234)

    prep = commands.add_parser(
        "prepare",
        help="write the parties' CSVs (alice_ml1m.csv and bob_ml1m.csv; with "
        "--layout bst alice_bst.csv and bob_bst.csv; with --layout three-party "
        "alice_3p.csv, carol_3p.csv and bob_3p.csv) from ml-1m data",
    )
    source = prep.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", type=Path, help="ml-1m folder or zip archive")
    source.add_argument(
        "--download", action="store_true", help="fetch ml-1m.zip (cached)"
    )
    prep.add_argument(
        "--cache", type=Path, help=f"download folder (default {DEFAULT_CACHE})"
    )
    prep.add_argument("--url", default=ML1M_URL, help="download URL")
    prep.add_argument("--sha256", default=ML1M_SHA256, help="expected SHA-256")
    prep.add_argument("--out", type=Path, required=True, help="output folder")
    prep.add_argument(
        "--num-sample", type=int, default=-1, help="first N ratings (-1: all)"
    )
    prep.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="reference",
        help="reference: the split DeepFM columns; bst: demographics at alice, "
        "each user's rating history at bob; three-party: users at alice, the "
        "movie catalogue (genres, year) at carol, IDs and the rating at bob",
    )
    prep.add_argument(
        "--sequence-length",
        type=int,
        default=DEFAULT_SEQUENCE_LENGTH,
        help=f"bst layout: previous movies per row (default {DEFAULT_SEQUENCE_LENGTH})",
    )
    tables = commands.add_parser(
        "tables",
        help=f"write the entity tables for online scoring ({USERS_CSV}, "
        f"{MOVIES_CSV}) from the reference layout's party CSVs",
    )
    tables.add_argument(
        "--data", type=Path, required=True, help="folder of the party CSVs"
    )
    tables.add_argument("--out", type=Path, help="output folder (default: --data)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "prepare" and args.cache is not None and not args.download:
        parser.error("--cache only applies together with --download")
    logging.basicConfig(
        level=args.log_level, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "generate":
            _generate(args)
        elif args.command == "tables":
            made = write_entity_tables(args.data, args.out)
            print(f"users: {made.users}")
            print(f"movies: {made.movies}")
        else:
            _prepare(args)
    except (DataPreparationError, ValueError, TypeError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _generate(args: argparse.Namespace) -> None:
    files = generate_ml1m(args.out, num_ratings=args.num_ratings, seed=args.seed)
    print(f"users: {files.users}")
    print(f"movies: {files.movies}")
    print(f"ratings: {files.ratings}")


def _prepare(args: argparse.Namespace) -> None:
    source = args.source
    if args.download:
        cache = args.cache if args.cache is not None else DEFAULT_CACHE
        source = download_ml1m(cache, url=args.url, sha256=args.sha256)
    files = prepare_party_csvs(
        source,
        args.out,
        num_sample=args.num_sample,
        layout=args.layout,
        sequence_length=args.sequence_length,
    )
    print(f"alice: {files.alice}")
    if files.carol is not None:
        print(f"carol: {files.carol}")
    print(f"bob: {files.bob}")
    print(f"rows: {files.rows}")


if __name__ == "__main__":
    sys.exit(main())
