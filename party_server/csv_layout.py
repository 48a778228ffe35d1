"""Checks a CSV file's bytes before parsing, a block at a time: UTF-8, and the
same field count on every line. Maps data rows to file line numbers so errors
can name the line (keeping only the blank lines' numbers, not one per row).

Blank lines are skipped (a documented rule); every other line must have exactly
as many fields as the header. Fields are never quoted in party files, so a comma
always separates fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from splitrec.common.errors import DataError

_NEWLINE, _COMMA, _RETURN = 10, 44, 13
_SHOWN = 3
_BLOCK = 16 * 1024 * 1024


@dataclass(frozen=True)
class CsvLayout:
    header: list[str]
    num_fields: int
    # Data rows (lines after the header that are not blank).
    rows: int
    # 1-based line numbers of the blank lines after the header, ascending.
    blank_lines: np.ndarray

    def line(self, row: int) -> int:
        """The 1-based file line of data row ``row``: the header's line and
        the blank lines before it are skipped."""
        line = row + 2
        while True:
            skipped = int(np.searchsorted(self.blank_lines, line, side="right"))
            if row + 2 + skipped == line:
                return line
            line = row + 2 + skipped


def _commas_per_line(data: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many commas each line of ``data`` (ending at ``ends``) holds."""
    positions = np.flatnonzero(data == _COMMA)
    lines = np.searchsorted(ends, positions)
    return np.bincount(lines, minlength=ends.size)


class _Scan:
    """What the blocks read so far showed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0  # lines before the current block
        self.offset = 0  # file offset of the current block
        self.header: list[str] | None = None
        self.num_fields = 0
        self.rows = 0
        self.blanks: list[np.ndarray] = []
        self.wrong = 0
        self.shown: list[str] = []
        self.first_wrong = 0

    def lines_of(self, part: bytes, last: bool) -> None:
        """Checks whole lines (``part`` ends with a newline unless ``last``)."""
        try:
            part.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = self.lines + part.count(b"\n", 0, exc.start) + 1
            column = exc.start - (part.rfind(b"\n", 0, exc.start) + 1) + 1
            raise DataError(
                f"{self.path}:{line}:{column}: byte 0x{part[exc.start]:02x} is not "
                f"UTF-8 (file offset {self.offset + exc.start}); re-encode the "
                "file as UTF-8"
            ) from None
        data = np.frombuffer(part, dtype=np.uint8)
        ends = np.flatnonzero(data == _NEWLINE)
        if last and data.size and data[-1] != _NEWLINE:
            ends = np.append(ends, data.size)  # a last line without a newline
        starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
        lengths = ends - starts
        carriage = np.zeros(ends.size, dtype=bool)
        nonempty = lengths > 0
        carriage[nonempty] = data[ends[nonempty] - 1] == _RETURN
        blank = (lengths - carriage) == 0
        commas = _commas_per_line(data, ends)
        numbers = np.arange(ends.size, dtype=np.int64) + self.lines + 1
        if self.header is None and ends.size:
            if blank[0]:
                raise DataError(
                    f"{self.path}: the file is empty; it needs a header line and rows"
                )
            text = part[: int(ends[0])].decode("utf-8-sig").rstrip("\r")
            self.header = text.split(",")
            self.num_fields = int(commas[0]) + 1
            blank, commas, numbers = blank[1:], commas[1:], numbers[1:]
        wrong = np.flatnonzero(~blank & (commas + 1 != self.num_fields))
        if wrong.size:
            if not self.wrong:
                self.first_wrong = int(numbers[wrong[0]])
            self.wrong += int(wrong.size)
            self.shown += [
                f"line {numbers[i]} has {commas[i] + 1}"
                for i in wrong[: _SHOWN - len(self.shown)].tolist()
            ]
        self.blanks.append(numbers[blank])
        self.rows += int((~blank).sum())
        self.lines += int(ends.size)
        self.offset += len(part)

    def layout(self) -> CsvLayout:
        if self.header is None:
            raise DataError(
                f"{self.path}: the file is empty; it needs a header line and rows"
            )
        if self.wrong:
            raise DataError(
                f"{self.path}:{self.first_wrong}: {self.wrong} line(s) do not have "
                f"the header's {self.num_fields} fields ({', '.join(self.shown)}); "
                "fix or remove them (fields may not contain commas)"
            )
        if self.rows == 0:
            raise DataError(f"{self.path}: the file has a header but no rows")
        blanks = np.concatenate(self.blanks) if self.blanks else np.zeros(0, np.int64)
        return CsvLayout(self.header, self.num_fields, self.rows, blanks)


def scan_csv(
    stream: BinaryIO, path: Path, copy_to: BinaryIO | None = None
) -> CsvLayout:
    """Validates encoding and field counts, reading ``stream`` a block at a
    time (``copy_to``, when given, gets every byte read); raises
    ``DataError`` naming the lines."""
    scan = _Scan(path)
    carry = b""
    while True:
        block = stream.read(_BLOCK)
        if copy_to is not None and block:
            copy_to.write(block)
        if not block:
            if carry:
                scan.lines_of(carry, last=True)
            return scan.layout()
        data = carry + block
        cut = data.rfind(b"\n") + 1
        if cut:
            scan.lines_of(data[:cut], last=False)
        carry = data[cut:]
