"""Synthetic UCI Adult files in the exact format of ``adult.data`` and
``adult.test``, with planted structure for both tasks of the multi-task job.

People get an age, sex, race and country; an education (and its
education-num), a marital status that depends mostly on age, a relationship
that follows marital status and sex, a work class, occupation, hours, capital
gains and losses and a sampling weight. Income above 50K follows education,
hours, age, marriage, sex, occupation and capital gains, plus noise (about a
quarter of people), so both labels (income, and marital status is
Never-married) are learnable from the two parties' columns together. Missing
values (``?``) appear in workclass, occupation and native-country as in the
real files. Output is byte-identical for a given seed (and NumPy version).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.datasets.census.adult import (
    COUNTRIES,
    EDUCATIONS,
    MARITAL_STATUSES,
    OCCUPATIONS,
    RACES,
    RELATIONSHIPS,
    SEXES,
    WORKCLASSES,
)
from splitrec.datasets.files import write_text_atomic

DATA_ROWS = 32_561
TEST_ROWS = 16_281

_EDUCATION_WEIGHTS = np.array(
    [51, 168, 333, 646, 514, 933, 1175, 433, 10501, 7291, 1382, 1067, 5355, 1723,
     576, 413],
    dtype=float,
)  # fmt: skip
_WORKCLASS_WEIGHTS = np.array([22696, 2541, 1116, 960, 2093, 1298, 14, 7], float)
_OCCUPATION_WEIGHTS = np.array(
    [928, 4099, 3295, 3650, 4066, 4140, 1370, 2002, 3770, 994, 1597, 149, 649, 9],
    dtype=float,
)  # fmt: skip
_RACE_WEIGHTS = np.array([27816, 1039, 311, 271, 3124], dtype=float)
# Occupations that pay more (Exec-managerial, Prof-specialty, Tech-support,
# Sales, Protective-serv) and less (Other-service, Handlers-cleaners,
# Priv-house-serv, Farming-fishing).
_OCCUPATION_EFFECT = np.array(
    [0.4, 0.0, -0.9, 0.3, 1.0, 0.9, -0.8, -0.3, -0.2, -0.7, 0.0, -1.5, 0.4, 0.0]
)  # fmt: skip


@dataclass(frozen=True)
class GeneratedCensus:
    """Paths of the two generated files."""

    data: Path
    test: Path


def generate_adult(
    out_dir: Path,
    rows: int = DATA_ROWS,
    test_rows: int = TEST_ROWS,
    seed: int = 1234,
) -> GeneratedCensus:
    """Writes ``adult.data`` (``rows`` records) and ``adult.test``
    (``test_rows``) into ``out_dir``."""
    for name, count, least in (("rows", rows, 1), ("test_rows", test_rows, 0)):
        if isinstance(count, bool) or not isinstance(count, int) or count < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {count!r}")
    rng = np.random.default_rng(seed)
    lines = _records(rng, rows + test_rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = GeneratedCensus(out_dir / "adult.data", out_dir / "adult.test")
    write_text_atomic(files.data, "\n".join(lines[:rows]) + "\n\n", "latin-1")
    test = [line + "." for line in lines[rows:]]
    write_text_atomic(
        files.test, "\n".join(["|1x3 Cross validator", *test]) + "\n", "latin-1"
    )
    return files


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(len(weights), n, p=weights / weights.sum())


def _with_missing(
    rng: np.random.Generator, names: tuple[str, ...], picked: np.ndarray, rate: float
) -> list[str]:
    values = np.array(names, dtype=object)[picked]
    values[rng.random(len(picked)) < rate] = "?"
    return values.tolist()


def _records(rng: np.random.Generator, n: int) -> list[str]:
    age = np.clip(17 + rng.gamma(2.2, 9.0, n), 17, 90).astype(int)
    male = rng.random(n) < 0.67
    race = _pick(rng, _RACE_WEIGHTS, n)
    country = np.where(rng.random(n) < 0.9, 0, rng.integers(1, len(COUNTRIES), n))
    education = _pick(rng, _EDUCATION_WEIGHTS, n)
    never_married = rng.random(n) < 1 / (1 + np.exp(0.16 * (age - 27)))
    married = ~never_married & (rng.random(n) < 0.65)
    other_status = rng.choice([1, 3, 4, 5, 6], n, p=[0.55, 0.12, 0.2, 0.11, 0.02])
    marital = np.where(never_married, 2, np.where(married, 0, other_status))
    relationship = np.where(
        married,
        np.where(male, 2, 0),
        np.where(
            never_married & (age < 25) & (rng.random(n) < 0.7),
            1,
            rng.choice([3, 5, 4], n, p=[0.6, 0.3, 0.1]),
        ),
    )
    occupation = _pick(rng, _OCCUPATION_WEIGHTS, n)
    workclass = _pick(rng, _WORKCLASS_WEIGHTS, n)
    hours = np.clip(np.round(rng.normal(40, 12, n)), 1, 99).astype(int)
    gain = np.where(
        rng.random(n) < 0.08, np.round(rng.lognormal(8.3, 1.0, n)), 0
    ).astype(int)
    gain = np.minimum(gain, 99999)
    loss = np.where(rng.random(n) < 0.05, rng.integers(1000, 2600, n), 0)
    fnlwgt = np.round(rng.lognormal(12.0, 0.5, n)).astype(int)
    logit = (
        -10.3
        + 0.42 * (education + 1)
        + 0.035 * hours
        + 0.05 * np.minimum(age, 55)
        + 1.6 * married
        + 0.5 * male
        + 2.5 * (gain > 5000)
        + _OCCUPATION_EFFECT[occupation]
        + rng.normal(0, 0.8, n)
    )
    rich = rng.random(n) < 1 / (1 + np.exp(-logit))
    columns = [
        age.tolist(),
        _with_missing(rng, WORKCLASSES, workclass, 0.056),
        fnlwgt.tolist(),
        np.array(EDUCATIONS, dtype=object)[education].tolist(),
        (education + 1).tolist(),
        np.array(MARITAL_STATUSES, dtype=object)[marital].tolist(),
        _with_missing(rng, OCCUPATIONS, occupation, 0.057),
        np.array(RELATIONSHIPS, dtype=object)[relationship].tolist(),
        np.array(RACES, dtype=object)[race].tolist(),
        np.array(SEXES, dtype=object)[male.astype(int)].tolist(),
        gain.tolist(),
        loss.tolist(),
        hours.tolist(),
        _with_missing(rng, COUNTRIES, country, 0.018),
        np.where(rich, ">50K", "<=50K").tolist(),
    ]
    return [", ".join(map(str, values)) for values in zip(*columns, strict=True)]
