"""The coordinator's command line.

``python -m coordinator run --job job.yaml`` drives a job against running parties;
``python -m coordinator demo --job job.yaml --party alice.yaml --party bob.yaml``
also starts the party servers as local processes and stops them afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common.config import (  # noqa: E402
    JobConfig,
    load_job_config,
    load_party_config,
    override_job,
)
from common.errors import SplitRecError  # noqa: E402
from common.logs import configure_logging  # noqa: E402

logger = logging.getLogger("coordinator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m coordinator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job against running party servers")
    demo = commands.add_parser(
        "demo", help="start local party servers, run a job, stop them"
    )
    demo.add_argument(
        "--party",
        action="append",
        required=True,
        type=Path,
        help="a party config (repeat)",
    )
    for sub in (run, demo):
        sub.add_argument(
            "--job", required=True, type=Path, help="the job's YAML config"
        )
        sub.add_argument("--epochs", type=int, help="override 'epochs'")
        sub.add_argument("--batch-size", type=int, help="override 'batch_size'")
        sub.add_argument("--runs-dir", type=Path, help="override 'runs_dir'")
        sub.add_argument(
            "--fresh",
            action="store_true",
            help="start afresh even when an unfinished run of the job could resume",
        )
        sub.add_argument(
            "--log-level", help="DEBUG, INFO, WARNING (or SPLITREC_LOG_LEVEL)"
        )
    return parser.parse_args(argv)


def job_config(args: argparse.Namespace) -> JobConfig:
    return override_job(
        load_job_config(args.job),
        epochs=args.epochs,
        batch_size=args.batch_size,
        runs_dir=args.runs_dir.resolve() if args.runs_dir else None,
    )


def run(config: JobConfig, fresh: bool = False) -> int:
    from coordinator.job import JobDriver, summary_lines

    result = JobDriver(config, fresh=fresh).run()
    for line in summary_lines(result):
        print(line, flush=True)
    return 0


def demo(config: JobConfig, party_paths: list[Path], fresh: bool = False) -> int:
    """Starts each party from its own config (label party first), then runs the job."""
    from coordinator.local import start_party

    parties = [(load_party_config(p), p) for p in party_paths]
    parties.sort(key=lambda item: item[0].label is None)
    started = []
    try:
        for party, path in parties:
            if config.party(party.party) is None:
                raise SplitRecError(
                    f"{path}: party {party.party!r} is not in {config.source}"
                )
            log = config.runs_dir / config.job / "logs" / f"{party.party}.log"
            started.append(start_party(path, log))
        return run(config, fresh)
    finally:
        for party in reversed(started):
            code = party.stop()
            logger.info("party %s stopped (exit code %s)", party.name, code)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = job_config(args)
        if args.command == "demo":
            return demo(config, args.party, args.fresh)
        return run(config, args.fresh)
    except SplitRecError as exc:
        print(f"coordinator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("coordinator: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
