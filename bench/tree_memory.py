"""Peak memory of a process's descendants (a party's engine: Ray's processes),
read from ``/proc`` while they run.

Each descendant's own peak (VmHWM) is kept by pid, as long as it is seen: a
watch started after a process began still reads its peak so far, but a
process that came and went between two looks is missed. Their sum is an upper
bound of what they held at once (pages they share, such as Ray's object
store, count in each).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

_MB = 1024 * 1024


def _parents() -> dict[int, int]:
    """Every process's parent, by pid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow
        # the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        found[int(entry)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    """The processes below ``pid``, at this moment."""
    children: dict[int, list[int]] = defaultdict(list)
    for child, parent in _parents().items():
        children[parent].append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _peak_and_name(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    peak = status.get("VmHWM")
    if peak is None:  # a zombie
        return None
    return int(peak.split()[0]) * 1024, status.get("Name", "?").strip()


class TreeWatch:
    """Looks at ``pid``'s descendants every ``interval`` seconds until
    ``stop``; ``peaks_mb`` then gives each one's peak, by name."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self._interval = interval
        self._peaks: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> TreeWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while True:
            self.look()
            if self._stop.wait(self._interval):
                return

    def look(self) -> None:
        for child in descendants(self.pid):
            found = _peak_and_name(child)
            if found is not None:
                before = self._peaks.get(child, (0, found[1]))[0]
                self._peaks[child] = (max(before, found[0]), found[1])

    def stop(self) -> dict[str, float]:
        """Stops looking; returns ``peaks_mb``."""
        self._stop.set()
        self._thread.join()
        return self.peaks_mb()

    def peaks_mb(self) -> dict[str, float]:
        """Each descendant's peak in MB, by its name (``raylet``,
        ``ray::IDLE``; a name seen twice gets its pid added)."""
        named: dict[str, float] = {}
        for pid, (peak, name) in sorted(self._peaks.items()):
            key = name if name not in named else f"{name}[{pid}]"
            named[key] = round(peak / _MB, 1)
        return named
