"""The ``splitrec`` command: one verb per thing a user does.

Each verb hands the rest of the command line to the module that does the work
(the coordinator, the data sets, the certificate authority, the config schema);
``python -m`` forms of those modules stay as aliases. The party server is its
own command, ``splitrec-party``, because it runs at each party's site.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# verb -> (module whose ``main(argv)`` runs it, arguments put before the user's,
# one line of help)
_COORDINATOR = "splitrec.coordinator.__main__"
VERBS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "run": (_COORDINATOR, ("run",), "run a job against running party servers"),
    "demo": (
        _COORDINATOR,
        ("demo",),
        "start local party servers, run a job, stop them",
    ),
    "export": (
        _COORDINATOR,
        ("export",),
        "have every party export its part of the model after an epoch",
    ),
    "predict": (
        _COORDINATOR,
        ("predict",),
        "score a data set the parties name with an exported model",
    ),
    "serve-switch": (
        _COORDINATOR,
        ("serve-switch",),
        "have every party's online scoring serve another exported version",
    ),
    "data": ("splitrec.datasets.__main__", (), "generate or prepare a data set"),
    "schema": (
        "splitrec.config.schema_command",
        (),
        "write the JSON Schema of the party or the job config",
    ),
    "certs": (
        "splitrec.security.certs",
        (),
        "write a development CA and mutual-TLS certificates",
    ),
    "baseline": (
        "splitrec.baseline.__main__",
        (),
        "train the same model centralized, in one process",
    ),
}

EPILOG = """\
The party server is the separate command `splitrec-party --config PARTY.yaml`.
`splitrec VERB --help` shows a verb's flags.

Exit codes: 0 done; 1 the job failed (or another coordinator runs it); 2 bad
flags, a bad config file or an unusable folder (nothing was started); 128 + the
signal's number when stopped by SIGINT (130), SIGTERM (143) or SIGHUP (129).
"""


def _version() -> str:
    from splitrec import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: a verb and the arguments it takes."""
    parser = argparse.ArgumentParser(
        prog="splitrec",
        description="SplitRec: split learning for recommendation across organisations.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"splitrec {_version()}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (_, _, help_text) in VERBS.items():
        verbs.add_parser(verb, help=help_text, add_help=False)
    return parser


def hand_over(module_name: str, argv: list[str]) -> int:
    """Runs ``main(argv)`` of the module that does the work; its exit code."""
    runner: Callable[[list[str]], int] = importlib.import_module(module_name).main
    return int(runner(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``splitrec VERB ...``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args or args[0] not in VERBS:
        # --help, --version, no verb or an unknown one: argparse says which.
        parser.parse_args(args)
        return 2
    module_name, before, _ = VERBS[args[0]]
    return hand_over(module_name, [*before, *args[1:]])


if __name__ == "__main__":
    sys.exit(main())
