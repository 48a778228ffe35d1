"""``splitrec demo`` without configs: everything the example job needs, in one folder.

A user who has only installed the package gets the reference job (or another
layout's) on generated data: the data set in ``WORK/data``, a development CA and
certificates in ``WORK/certs`` (every process uses mutual TLS, as deployed),
and the example configs rewritten into ``WORK/<layout>/`` to read that data and
write under ``WORK/<layout>/runs``. What is there already is kept, configs
included (a user may have edited them), so a second demo resumes or repeats the
same job; only the ports are picked afresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

from splitrec.coordinator.local_configs import LAYOUTS, LocalConfigs

logger = logging.getLogger(__name__)

# Generated ratings of the quick start's data set (``make demo`` uses as many).
DEFAULT_RATINGS = 100_000


def _data_files(layout: str, data: Path) -> list[Path]:
    _, suffix, parties = LAYOUTS[layout]
    return [data / f"{party}_{suffix}.csv" for party in parties]


def _prepare_data(layout: str, data: Path, ratings: int, seed: int) -> None:
    if all(path.is_file() for path in _data_files(layout, data)):
        logger.info("data set: %s (kept)", data)
        return
    if layout == "census":
        from splitrec.datasets.census.generate import generate_adult
        from splitrec.datasets.census.prepare import prepare_census

        raw = generate_adult(data / "raw-adult", seed=seed)
        prepare_census(raw.data, data, raw.test)
    else:
        from splitrec.datasets.movielens.prepare import prepare_generated

        movielens_layout = "reference" if layout == "two-tasks" else layout
        prepare_generated(data, ratings, seed=seed, layout=movielens_layout)
    logger.info("data set: generated into %s", data)


def _prepare_certs(layout: str, certs: Path) -> None:
    from splitrec.security.certs import write_bundle

    _, _, parties = LAYOUTS[layout]
    identities = [*parties, "coordinator"]
    if all((certs / f"{name}.pem").is_file() for name in identities):
        return
    write_bundle(certs, identities)


def prepare_quickstart(
    work: Path,
    layout: str = "reference",
    ratings: int = DEFAULT_RATINGS,
    seed: int = 7,
) -> LocalConfigs:
    """The data, certificates and configs of ``layout``'s example job in
    ``work``; returns its configs (their ports are picked when the parties
    start)."""
    if layout not in LAYOUTS:
        raise ValueError(
            f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}"
        )
    work = work.resolve()
    data, certs = work / "data", work / "certs"
    _prepare_data(layout, data, ratings, seed)
    _prepare_certs(layout, certs)
    folder = work / layout
    _, _, parties = LAYOUTS[layout]
    paths = {name: folder / f"{name}.yaml" for name in (*parties, "job")}
    if all(path.is_file() for path in paths.values()):
        logger.info("configs: %s (kept)", folder)
        return LocalConfigs(folder, **paths)
    return LocalConfigs.write(folder, data, certs, layout)
