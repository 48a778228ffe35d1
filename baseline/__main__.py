"""``splitrec baseline --job job.yaml --party alice.yaml --party bob.yaml``

Trains the same model (any family) in one process on the same batches as the
split job and writes ``<runs_dir>/<job>-centralized/history.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from splitrec.common.errors import SplitRecError  # noqa: E402
from splitrec.common.logs import configure_logging  # noqa: E402
from splitrec.config.job import load_job_config, override_job  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="splitrec baseline",
        description=__doc__,
        epilog="Exit codes: 0 trained; 1 the configs or the data cannot be used "
        "(the message says why); 2 bad flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--job", required=True, type=Path, help="the job's YAML config")
    parser.add_argument(
        "--party",
        action="append",
        required=True,
        type=Path,
        help="a party config (repeat for every party)",
    )
    parser.add_argument("--epochs", type=int, help="override 'epochs'")
    parser.add_argument("--batch-size", type=int, help="override 'batch_size'")
    parser.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING (or SPLITREC_LOG_LEVEL)"
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    from splitrec.baseline.centralized import CentralizedTrainer, load_parties
    from splitrec.common.history import write_history

    try:
        job = override_job(
            load_job_config(args.job), epochs=args.epochs, batch_size=args.batch_size
        )
        trainer = CentralizedTrainer(job, load_parties(args.party))
        records = trainer.fit()
    except SplitRecError as exc:
        print(f"splitrec baseline: {exc}", file=sys.stderr)
        return 1
    path = job.runs_dir / f"{job.job}-centralized" / "history.json"
    write_history(path, records)
    last = records[-1]
    print(
        f"centralized: val AUC {last.val_auc:.4f} loss {last.val_loss:.4f}, "
        f"{last.samples_per_second:,.0f} samples/s; history {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
