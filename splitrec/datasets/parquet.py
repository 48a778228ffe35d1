"""``splitrec data parquet``: a party's CSV file as a Parquet dataset.

The CSV is read a block at a time (pyarrow's streaming CSV reader) and written
as shards of ``--shard-rows`` rows, ``part-00000.parquet`` and on, into a
folder named after the file. Every column is written as text, so a value reads
back as it was written (``007`` stays ``007``). The folder is written beside
its final place and renamed once complete: a cut-short conversion leaves
nothing a party could read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEFAULT_SHARD_ROWS = 1_000_000
_BLOCK_BYTES = 16 * 1024 * 1024


def csv_to_parquet(
    source: Path, target: Path, shard_rows: int = DEFAULT_SHARD_ROWS
) -> list[Path]:
    """Writes the CSV file ``source`` as the Parquet dataset folder ``target``
    (replacing it); returns the shards' paths."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if shard_rows < 1:
        raise ValueError(f"--shard-rows must be at least 1, got {shard_rows}")
    header = _header(source)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    shards: list[str] = []
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        writer, written = None, 0
        for batch in reader:
            while batch.num_rows:
                if writer is None or written == shard_rows:
                    if writer is not None:
                        writer.close()
                    shards.append(f"part-{len(shards):05d}.parquet")
                    writer = pq.ParquetWriter(staging / shards[-1], batch.schema)
                    written = 0
                take = min(shard_rows - written, batch.num_rows)
                writer.write_batch(batch.slice(0, take))
                written += take
                batch = batch.slice(take)
        if writer is not None:
            writer.close()
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / name for name in shards]


def _header(source: Path) -> list[str]:
    with Path(source).open(encoding="utf-8-sig") as handle:
        first = handle.readline().rstrip("\r\n")
    if not first:
        raise ValueError(f"{source}: the file is empty; it needs a header line")
    return first.split(",")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="splitrec data parquet",
        description="Write party CSV files as Parquet datasets (folders of shards "
        "named after each file, every column as text).",
        epilog="Exit codes: 0 written; 2 bad flags or a file that cannot be read.",
    )
    parser.add_argument("csv", type=Path, nargs="+", help="party CSV files")
    parser.add_argument(
        "--out", type=Path, help="folder of the datasets (default: each file's)"
    )
    parser.add_argument(
        "--shard-rows",
        type=int,
        default=DEFAULT_SHARD_ROWS,
        help=f"rows per shard (default {DEFAULT_SHARD_ROWS:,})",
    )
    args = parser.parse_args(argv)
    for source in args.csv:
        folder = (args.out or source.parent) / source.stem
        try:
            shards = csv_to_parquet(source, folder, args.shard_rows)
        except (OSError, ValueError) as exc:
            print(f"error: {source}: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        print(f"{source} -> {folder} ({len(shards)} shards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
