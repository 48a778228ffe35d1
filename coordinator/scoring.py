"""Batch scoring of new rows with an exported model version.

``splitrec predict --job job.yaml --model VERSION --dataset KEY``
runs a scoring job: every party reads the dataset its own config names under
``KEY`` (a job never sends a path), encodes it as its exported part of
``VERSION`` was trained to (``features.json``), aligns its rows with the
others' by PSI (rows that some party lacks are not scored), and loads its part;
the label party scores every shared row and writes ``ID,score`` (a column per
task for several) to ``<output_dir>/<job>+<version>+<dataset>/predictions-all.csv``.
The coordinator learns the row counts only. The run is named
``<job>+<version>+<dataset>`` (``splitrec.common.names``): no job can be named so, so a
scoring run and a training run never share a folder, a lock or a hold.
"""

from __future__ import annotations

import dataclasses

from splitrec.common.errors import ConfigError
from splitrec.common.names import name_problem, scoring_run_name
from splitrec.config.job import JobConfig, validate_job_config
from splitrec.coordinator.model_export import recorded_version


def scoring_config(config: JobConfig, version: str, dataset: str) -> JobConfig:
    """The scoring job of ``dataset`` with the job's exported ``version``.

    It keeps the job's parties, seed, batch size and clipping; it trains
    nothing, probes nothing, exports nothing, and noises no prediction."""
    for what, value in (("--model", version), ("--dataset", dataset)):
        problem = name_problem(value)
        if problem is not None:
            raise ConfigError(f"{what}: {problem}")
    found = recorded_version(config, config.job, version)
    privacy = dataclasses.replace(
        config.privacy,
        leakage_probe=False,
        dp_releases="training",
        mid_releases="training",
    )
    scoring = config.model_copy(
        update={
            "job": scoring_run_name(config.job, version, dataset),
            "epochs": found.epoch + 1,
            "init_job": config.job,
            "init_version": version,
            "dataset": dataset,
            "predict": "all",
            "export": "none",
            "privacy": privacy,
        }
    )
    validate_job_config(scoring)
    return scoring
