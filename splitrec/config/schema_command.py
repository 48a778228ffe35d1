"""``splitrec schema party|job [--out FILE]``: a config's JSON Schema.

Editors (through the ``# yaml-language-server: $schema=`` line the shipped
configs carry), CI linters and notebooks check a config against it without
running SplitRec.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from splitrec.common.atomic import write_atomically


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the schema to ``--out`` or prints it; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="splitrec schema",
        description="Write the JSON Schema of a party config or a job config.",
        epilog="Exit codes: 0 written; 1 the file cannot be written; 2 bad flags.",
    )
    parser.add_argument("kind", choices=("party", "job"), help="which config")
    parser.add_argument(
        "--out", type=Path, help="the file to write (default: standard output)"
    )
    args = parser.parse_args(argv)
    from splitrec.config.schema import json_schema

    text = json.dumps(json_schema(args.kind), indent=2, sort_keys=True) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(args.out, text.encode())
    except OSError as exc:
        print(f"splitrec schema: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
