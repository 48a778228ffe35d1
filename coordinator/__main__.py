"""The coordinator's command line.

``splitrec run --job job.yaml`` drives a job against running parties;
``splitrec demo --job job.yaml --party alice.yaml --party bob.yaml``
also starts the party servers as local processes and stops them afterwards;
``splitrec export --job job.yaml [--epoch N | --best]`` has every
party export its part of the model after an epoch of an earlier run;
``splitrec predict --job job.yaml --model VERSION --dataset KEY``
scores a dataset the parties' configs name with an exported version;
``splitrec serve-switch --job job.yaml --version VERSION`` has the
parties' online scoring switch to another exported version, all together.

Exit codes: 0 the job finished; 1 the job failed (or another coordinator runs
it); 2 bad flags, a bad config file or an unusable runs folder (nothing was
started); 128 + the signal's number when stopped by SIGINT (130), SIGTERM (143)
or SIGHUP (129), after the parties the demo started have stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from splitrec.common.errors import ConfigError, SplitRecError  # noqa: E402
from splitrec.common.logs import configure_logging, log_level  # noqa: E402
from splitrec.common.names import name_problem  # noqa: E402
from splitrec.common.paths import check_writable, confined  # noqa: E402
from splitrec.common.signals import Terminated, raise_on_stop_signals  # noqa: E402
from splitrec.config.job import JobConfig, load_job_config, override_job  # noqa: E402
from splitrec.config.limits import JOB_LIMITS, Limit, flag_type  # noqa: E402
from splitrec.config.party import load_party_config  # noqa: E402
from splitrec.coordinator.local_configs import LAYOUTS  # noqa: E402
from splitrec.coordinator.quickstart import DEFAULT_RATINGS  # noqa: E402
from splitrec.datasets.movielens.generate import NUM_MOVIES, NUM_USERS  # noqa: E402

logger = logging.getLogger("coordinator")


def _job_flags(
    sub: argparse.ArgumentParser, overrides: tuple[str, ...], job_help: str = ""
) -> None:
    """The flags every command takes, and the job settings it may override."""
    sub.add_argument(
        "--job",
        required=not job_help,
        type=Path,
        help=job_help or "the job's YAML config",
    )
    if "epochs" in overrides:
        sub.add_argument(
            "--epochs",
            type=flag_type(JOB_LIMITS["epochs"][1]),
            help="override 'epochs'",
        )
    if "batch_size" in overrides:
        sub.add_argument(
            "--batch-size",
            type=flag_type(JOB_LIMITS["batch_size"][1]),
            help="override 'batch_size' (scoring takes at least 1024 rows a batch)",
        )
    sub.add_argument("--runs-dir", type=Path, help="override 'runs_dir'")
    sub.add_argument(
        "--log-level",
        type=log_level,
        help="DEBUG, INFO, WARNING or ERROR (or SPLITREC_LOG_LEVEL)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="splitrec",
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
        type=Path,
        help="a party config (repeat; with --job)",
    )
    demo.add_argument(
        "--work",
        type=Path,
        default=Path("splitrec-demo"),
        help="without --job: the folder for the example job's generated data, "
        "certificates, configs and runs (default: ./splitrec-demo)",
    )
    demo.add_argument(
        "--layout",
        choices=tuple(LAYOUTS),
        default="reference",
        help="without --job: which example job (default: reference, split DeepFM "
        "on MovieLens-format data)",
    )
    demo.add_argument(
        "--ratings",
        type=flag_type(Limit(2 * NUM_USERS, NUM_USERS * NUM_MOVIES, integer=True)),
        default=DEFAULT_RATINGS,
        help="without --job: generated ratings (default: %(default)s)",
    )
    _job_flags(run, ("epochs", "batch_size"))
    _job_flags(
        demo,
        ("epochs", "batch_size"),
        "the job's YAML config (with one --party per party); without it, the "
        "example job on generated data in --work",
    )
    for sub in (run, demo):
        sub.add_argument(
            "--fresh",
            action="store_true",
            help="start afresh even when an unfinished run of the job could resume",
        )
    export = commands.add_parser(
        "export",
        help="have every party export its part of the model after an epoch of a "
        "run of the job (from the checkpoint kept of it)",
    )
    _job_flags(export, ())
    which = export.add_mutually_exclusive_group()
    which.add_argument(
        "--epoch",
        type=flag_type(JOB_LIMITS["epochs"][1]),
        help="the epoch (1-based) whose model to export (default: the last)",
    )
    which.add_argument(
        "--best", action="store_true", help="the epoch of the best validation AUC"
    )
    export.add_argument(
        "--version", type=_version, help="the version's name (default: epoch-<E>)"
    )
    predict = commands.add_parser(
        "predict",
        help="score a dataset the parties' configs name with an exported model",
    )
    _job_flags(predict, ("batch_size",))
    predict.add_argument(
        "--model", required=True, type=_version, help="the exported model version"
    )
    predict.add_argument(
        "--dataset",
        required=True,
        type=_version,
        help="the key of the dataset in every party's config ('datasets')",
    )
    switch = commands.add_parser(
        "serve-switch",
        help="have every party's online scoring serve another exported version",
    )
    _job_flags(switch, ())
    switch.add_argument(
        "--version", required=True, type=_version, help="the exported version"
    )
    return parser.parse_args(argv)


def _version(text: str) -> str:
    problem = name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def job_config(args: argparse.Namespace) -> JobConfig:
    """The job's config with the flags applied; its runs folder checked."""
    config = override_job(
        load_job_config(args.job),
        epochs=getattr(args, "epochs", None),
        batch_size=getattr(args, "batch_size", None),
        runs_dir=args.runs_dir.resolve() if args.runs_dir else None,
    )
    key = "--runs-dir" if args.runs_dir else "runs_dir"
    check_writable(config.runs_dir, key, "the flags" if args.runs_dir else args.job)
    return config


def run(config: JobConfig, fresh: bool = False) -> int:
    from splitrec.coordinator.job import JobDriver
    from splitrec.coordinator.records import summary_lines

    driver = JobDriver(config, fresh=fresh)
    result = driver.run()
    for line in summary_lines(result.records, result.run_dir):
        print(line, flush=True)
    for reason in driver.stopped_by:
        print(f"  stopped early: {reason}", flush=True)
    if driver.exported is not None:
        print(
            f"model version {driver.exported}: each party's part is in its own "
            f"output folder (<output_dir>/{config.job}/model/{driver.exported})",
            flush=True,
        )
    return 0


def export(
    config: JobConfig, epoch: int | None, best: bool, version: str | None
) -> int:
    from splitrec.coordinator.job import JobDriver
    from splitrec.coordinator.manifest import read_manifest

    manifest = read_manifest(confined(config.runs_dir, config.job))
    if manifest is not None:
        # The run's epochs and batch size, which flags may have set.
        config = override_job(config, **manifest.settings)
        if epoch is None and not best:
            epoch = manifest.records[-1]["epoch"] if manifest.records else 0
    choice = JobDriver(config).export(epoch, version)
    print(
        f"model version {choice.version} (after epoch {choice.record.epoch}, "
        f"val AUC {choice.record.val_auc:.4f}): each party's part is in its own "
        f"output folder (<output_dir>/{config.job}/model/{choice.version})",
        flush=True,
    )
    return 0


def predict(config: JobConfig, version: str, dataset: str) -> int:
    from splitrec.coordinator.job import JobDriver
    from splitrec.coordinator.scoring import scoring_config

    scoring = scoring_config(config, version, dataset)
    found = JobDriver(scoring).score()
    print(
        f"dataset {dataset}: {found['shared_rows']} rows shared by every party; "
        f"party {config.label_party} wrote {found['scored_rows']} scores of model "
        f"version {version} to its own output folder "
        f"(<output_dir>/{scoring.job}/predictions-all.csv)\n"
        f"  aligned and loaded in {found['prepare_seconds']:.1f} s, scored in "
        f"{found['score_seconds']:.1f} s ({found['rows_per_second']:,.0f} rows/s)",
        flush=True,
    )
    return 0


def serve_switch(config: JobConfig, version: str) -> int:
    from splitrec.coordinator.serving import switch_serving

    reply = switch_serving(config, version)
    digests = ", ".join(f"{p} {d[:12]}" for p, d in sorted(reply.model_digests.items()))
    print(
        f"every party serves model version {reply.version} now (was "
        f"{reply.previous}; digests {digests})",
        flush=True,
    )
    return 0


def demo(config: JobConfig, party_paths: list[Path], fresh: bool = False) -> int:
    """Starts each party from its own config (label party first), then runs the
    job; the parties stop however the job ends (a signal included)."""
    from splitrec.coordinator.local import start_party
    from splitrec.coordinator.ownership import RunLock

    parties = [(load_party_config(p), p) for p in party_paths]
    parties.sort(key=lambda item: not item[0].labels)
    for party, path in parties:
        if config.party(party.party) is None:
            raise ConfigError(
                f"{path}: party {party.party!r} is not in {config.source}"
            )
        check_writable(party.output_dir, "output_dir", path)
    run_dir = confined(config.runs_dir, config.job)
    started = []
    # The lock first: a second demo of the job is refused before it starts anything.
    with RunLock(run_dir):
        try:
            for party, path in parties:
                log = run_dir / "logs" / f"{party.party}.log"
                started.append(start_party(path, log))
            return run(config, fresh)
        finally:
            for party in reversed(started):
                code = party.stop()
                logger.info("party %s stopped (exit code %s)", party.name, code)


def quick_demo(args: argparse.Namespace) -> int:
    """``demo`` without configs: the example job of ``--layout`` on generated
    data in ``--work``, on free loopback ports (picked again if another
    process takes one first)."""
    from splitrec.common.folder_lock import FolderLock
    from splitrec.coordinator.local import START_ATTEMPTS, bind_failed, pick_addresses
    from splitrec.coordinator.quickstart import prepare_quickstart

    check_writable(args.work, "--work", "the flags")
    print(f"example job ({args.layout}) in {args.work.resolve()}", flush=True)
    # One demo per folder: a second one would write the same data, certificates
    # and configs while the first reads them.
    with FolderLock(
        args.work,
        ".demo.lock",
        "splitrec demo",
        "wait for it to end, or give this one another --work",
    ):
        try:
            configs = prepare_quickstart(args.work, args.layout, args.ratings)
        except OSError as exc:
            print(f"splitrec: cannot prepare {args.work}: {exc}", file=sys.stderr)
            return 2
        args.job = configs.job
        for attempt in range(1, START_ATTEMPTS + 1):
            pick_addresses(configs)
            try:
                return demo(
                    job_config(args), list(configs.parties.values()), args.fresh
                )
            except SplitRecError as exc:
                if attempt == START_ATTEMPTS or not bind_failed(exc):
                    raise
                logger.warning("a party's port was taken; starting again on others")
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    raise_on_stop_signals()
    try:
        if args.command == "demo" and args.job is None:
            if args.party:
                print("splitrec: --party needs --job", file=sys.stderr)
                return 2
            return quick_demo(args)
        if args.command == "demo" and not args.party:
            print("splitrec: --job needs one --party per party", file=sys.stderr)
            return 2
        try:
            config = job_config(args)
        except SplitRecError as exc:
            print(f"splitrec: {exc}", file=sys.stderr)
            return 2
        if args.command == "demo":
            return demo(config, args.party, args.fresh)
        if args.command == "export":
            return export(config, args.epoch, args.best, args.version)
        if args.command == "predict":
            return predict(config, args.model, args.dataset)
        if args.command == "serve-switch":
            return serve_switch(config, args.version)
        return run(config, args.fresh)
    except ConfigError as exc:
        print(f"splitrec: {exc}", file=sys.stderr)
        return 2
    except SplitRecError as exc:
        print(f"splitrec: {exc}", file=sys.stderr)
        return 1
    except Terminated as exc:
        print(f"splitrec: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
