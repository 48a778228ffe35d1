"""Runs one party server: ``python -m party_server --config alice.yaml``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common.config import load_party_config  # noqa: E402
from common.errors import SplitRecError  # noqa: E402
from common.logs import configure_logging  # noqa: E402

logger = logging.getLogger("party_server")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m party_server",
        description="Serve one party of a split-learning job from its own config file.",
    )
    parser.add_argument("--config", required=True, help="the party's YAML config file")
    parser.add_argument(
        "--listen", help="host:port to listen on (overrides 'listen'; port 0 picks one)"
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for a peer's tensor before a step fails (default 120)",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=0,
        help="TensorFlow threads inside one operation (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--inter-op-threads",
        type=int,
        default=0,
        help="TensorFlow operations run at once (0: TensorFlow's default)",
    )
    parser.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING (or SPLITREC_LOG_LEVEL)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    import tensorflow as tf

    # Thread pools must be sized before TensorFlow runs its first operation.
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from party_server.server import start_party

    try:
        config = load_party_config(args.config)
        running = start_party(config, args.listen, args.peer_timeout)
    except (SplitRecError, OSError) as exc:
        print(f"party_server: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    host = (args.listen or config.listen).rsplit(":", 1)[0]
    print(f"READY party={config.party} address={host}:{running.port}", flush=True)
    stop.wait()
    logger.info("stopping party %s", config.party)
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
