"""Checks a CSV file's bytes before parsing: UTF-8, and the same field count on
every line. Maps data rows to file line numbers so errors can name the line.

Blank lines are skipped (a documented rule); every other line must have exactly
as many fields as the header. Fields are never quoted in party files, so a comma
always separates fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitrec.common.errors import DataError

_NEWLINE, _COMMA, _RETURN = 10, 44, 13
_SHOWN = 3
_BLOCK = 16 * 1024 * 1024


@dataclass(frozen=True)
class CsvLayout:
    header: list[str]
    num_fields: int
    # 1-based file line number of every data row, in order.
    row_lines: np.ndarray

    def line(self, row: int) -> int:
        return int(self.row_lines[row])


def _check_utf8(raw: bytes, path: Path) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{path}:{line}:{column}: byte 0x{raw[exc.start]:02x} is not UTF-8 "
            f"(file offset {exc.start}); re-encode the file as UTF-8"
        ) from None


def _commas_per_line(data: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many commas each line holds, reading the bytes block by block so that
    large files need little memory beyond the bytes themselves."""
    commas = np.zeros(ends.size, dtype=np.int64)
    for start in range(0, data.size, _BLOCK):
        positions = np.flatnonzero(data[start : start + _BLOCK] == _COMMA) + start
        if positions.size:
            lines = np.searchsorted(ends, positions)
            commas += np.bincount(lines, minlength=ends.size)
    return commas


def scan_csv(raw: bytes, path: Path) -> CsvLayout:
    """Validates encoding and field counts; raises ``DataError`` naming the lines."""
    _check_utf8(raw, path)
    data = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    if data.size and data[-1] != _NEWLINE:
        ends = np.append(ends, data.size)  # a last line without a newline
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    lengths = ends - starts
    carriage = np.zeros(ends.size, dtype=bool)
    nonempty = lengths > 0
    carriage[nonempty] = data[ends[nonempty] - 1] == _RETURN
    blank = (lengths - carriage) == 0
    commas = _commas_per_line(data, ends)
    if ends.size == 0 or blank[0]:
        raise DataError(f"{path}: the file is empty; it needs a header line and rows")
    num_fields = int(commas[0]) + 1
    wrong = np.flatnonzero(~blank & (commas + 1 != num_fields))
    if wrong.size:
        shown = ", ".join(
            f"line {i + 1} has {commas[i] + 1}" for i in wrong[:_SHOWN].tolist()
        )
        raise DataError(
            f"{path}:{wrong[0] + 1}: {wrong.size} line(s) do not have the header's "
            f"{num_fields} fields ({shown}); fix or remove them (fields may not "
            "contain commas)"
        )
    row_lines = np.flatnonzero(~blank)[1:] + 1
    if row_lines.size == 0:
        raise DataError(f"{path}: the file has a header but no rows")
    header = raw[: int(ends[0])].decode("utf-8-sig").rstrip("\r").split(",")
    return CsvLayout(header, num_fields, row_lines)
