"""Runs one party server: ``splitrec-party --config alice.yaml``.

Exit codes: 0 after SIGTERM or Ctrl-C (the in-flight step is abandoned, streams
are closed; a stop that is not done within ``STOP_DEADLINE`` seconds logs every
thread's stack and ends the process anyway); 2 when it cannot start (bad flags,
config, data, certificates, an output_dir that is not a writable folder, or an
address it cannot listen on).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import multiprocessing
import os
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from splitrec.common.errors import SplitRecError  # noqa: E402
from splitrec.common.lifetime import stop_with_parent  # noqa: E402
from splitrec.common.logs import configure_logging, log_level  # noqa: E402
from splitrec.common.memory import keep_large_blocks_mapped  # noqa: E402
from splitrec.common.paths import check_writable  # noqa: E402
from splitrec.common.signals import StopFlag  # noqa: E402
from splitrec.config.limits import (  # noqa: E402
    LISTEN_PORT,
    PEER_TIMEOUT,
    THREADS,
    address_flag,
    flag_type,
)
from splitrec.config.party import load_party_config  # noqa: E402

logger = logging.getLogger("party_server")

# Seconds a stop may take (closing jobs, the server's grace, threads ending)
# before the process ends without waiting for what is left.
STOP_DEADLINE = 10.0
# How often the main thread wakes up to run a signal handler (see main).
_WAKE_SECONDS = 0.5


def _end_anyway(party: str) -> None:
    """The stop took too long: shows where every thread is, ends the worker
    processes it started (PSI), then exits 0."""
    logger.error(
        "party %s: stopping took over %.0f s; every thread's stack follows, "
        "then the process ends without waiting for them",
        party,
        STOP_DEADLINE,
    )
    logging.shutdown()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    for child in multiprocessing.active_children():
        child.kill()
    os._exit(0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="splitrec-party",
        description="Serve one party of a split-learning job from its own config file.",
        epilog="Exit codes: 0 stopped by SIGTERM, SIGINT or SIGHUP; 2 it cannot "
        "start (bad flags, config, data or certificates, an output_dir that is not "
        "a writable folder, an address it cannot listen on).",
    )
    parser.add_argument("--config", required=True, help="the party's YAML config file")
    parser.add_argument(
        "--listen",
        type=address_flag(LISTEN_PORT),
        help="host:port to listen on (overrides 'listen'; port 0 picks one)",
    )
    parser.add_argument(
        "--peer-timeout",
        type=flag_type(PEER_TIMEOUT, float),
        default=120.0,
        help="seconds to wait for a peer's tensor before a step fails (default 120)",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=flag_type(THREADS),
        default=0,
        help="TensorFlow threads inside one operation (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--inter-op-threads",
        type=flag_type(THREADS),
        default=0,
        help="TensorFlow operations run at once (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--log-level",
        type=log_level,
        help="DEBUG, INFO, WARNING or ERROR (or SPLITREC_LOG_LEVEL)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    stop = StopFlag()  # set by a signal handler: an Event's lock could deadlock

    def on_signal(signum: int, frame: object) -> None:
        if serving.is_set():
            stop.set()
        else:  # still loading: nothing to close yet, stop at once
            raise SystemExit(0)

    serving = threading.Event()

    def parent_gone() -> None:
        if serving.is_set():
            stop.set()
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    # `kill -USR1 PID` writes every thread's stack to the log (a party that
    # seems stuck), without the interpreter's help and without stopping it.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    stop_with_parent(parent_gone)
    try:
        config = load_party_config(args.config)
        check_writable(config.output_dir, "output_dir", config.source)
    except SplitRecError as exc:
        print(f"splitrec-party: {exc}", file=sys.stderr)
        return 2
    keep_large_blocks_mapped()
    import tensorflow as tf

    # Thread pools must be sized before TensorFlow runs its first operation.
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from splitrec.party_server.server import start_party

    try:
        running = start_party(config, args.listen, args.peer_timeout)
    except (SplitRecError, OSError) as exc:
        print(f"splitrec-party: {exc}", file=sys.stderr)
        return 2
    serving.set()
    host = (args.listen or config.listen).rsplit(":", 1)[0]
    print(f"READY party={config.party} address={host}:{running.port}", flush=True)
    # The kernel may hand a signal to any thread; Python runs the handler only
    # when the main thread runs again, so it wakes up now and then to let it.
    stop.wait(_WAKE_SECONDS)
    logger.info("stopping party %s", config.party)
    deadline = threading.Timer(STOP_DEADLINE, _end_anyway, (config.party,))
    deadline.daemon = True
    deadline.start()
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
