"""The UCI Adult (census income) files: their columns, value domains and reader.

``adult.data`` and ``adult.test`` have no header; each line holds 15 values
separated by a comma and a space, ``?`` where a value is missing, and ends with
the income class (``<=50K`` or ``>50K``; ``adult.test`` adds a trailing dot and
starts with a ``|1x3 Cross validator`` line). Blank lines are ignored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from splitrec.datasets.files import DataPreparationError

COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)
WHOLE_NUMBERS = (
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
)
INCOMES = ("<=50K", ">50K")
MISSING = "?"

WORKCLASSES = (
    "Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov",
    "State-gov", "Without-pay", "Never-worked",
)  # fmt: skip
# Education levels with their education-num, lowest first.
EDUCATIONS = (
    "Preschool", "1st-4th", "5th-6th", "7th-8th", "9th", "10th", "11th", "12th",
    "HS-grad", "Some-college", "Assoc-voc", "Assoc-acdm", "Bachelors", "Masters",
    "Prof-school", "Doctorate",
)  # fmt: skip
MARITAL_STATUSES = (
    "Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
    "Married-spouse-absent", "Married-AF-spouse",
)  # fmt: skip
OCCUPATIONS = (
    "Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
    "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
    "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
    "Armed-Forces",
)  # fmt: skip
RELATIONSHIPS = (
    "Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried",
)  # fmt: skip
RACES = ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black")
SEXES = ("Female", "Male")
COUNTRIES = (
    "United-States", "Cambodia", "England", "Puerto-Rico", "Canada", "Germany",
    "Outlying-US(Guam-USVI-etc)", "India", "Japan", "Greece", "South", "China",
    "Cuba", "Iran", "Honduras", "Philippines", "Italy", "Poland", "Jamaica",
    "Vietnam", "Mexico", "Portugal", "Ireland", "France", "Dominican-Republic",
    "Laos", "Ecuador", "Taiwan", "Haiti", "Columbia", "Hungary", "Guatemala",
    "Nicaragua", "Scotland", "Thailand", "Yugoslavia", "El-Salvador",
    "Trinadad&Tobago", "Peru", "Hong", "Holand-Netherlands",
)  # fmt: skip

_FIX = "use the original adult.data / adult.test, or fix that line"


def read_adult(path: Path) -> pd.DataFrame:
    """One of the UCI files as a frame of stripped strings (``COLUMNS``), the
    income without ``adult.test``'s trailing dot. Malformed lines are refused,
    naming the file and line."""
    try:
        text = Path(path).read_text(encoding="latin-1")
    except OSError as exc:
        raise DataPreparationError(
            f"cannot read {path}: {exc.strerror or exc}; pass the path of "
            "adult.data (--source) or adult.test (--test)"
        ) from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (number == 1 and line.startswith("|")):
            continue
        rows.append(_values(path, number, line))
    if not rows:
        raise DataPreparationError(f"{path} holds no records; {_FIX}")
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _values(path: Path, number: int, line: str) -> list[str]:
    values = [value.strip() for value in line.split(",")]
    if len(values) != len(COLUMNS):
        raise DataPreparationError(
            f"{path} line {number}: expected {len(COLUMNS)} comma-separated values, "
            f"got {len(values)} in {line[:100]!r}; {_FIX}"
        )
    record = dict(zip(COLUMNS, values, strict=True))
    for column in WHOLE_NUMBERS:
        value = record[column]
        if value != MISSING and not (value.isascii() and value.isdigit()):
            raise DataPreparationError(
                f"{path} line {number}: {column} {value[:40]!r} is not a whole "
                f"number; {_FIX}"
            )
    income = record["income"].removesuffix(".")
    if income not in INCOMES:
        raise DataPreparationError(
            f"{path} line {number}: income {record['income'][:40]!r} is not one of "
            f"{list(INCOMES)}; {_FIX}"
        )
    values[-1] = income
    return values
