"""A party's engine: the Ray cluster its config names (reached at start-up), or
a local Ray instance, started the first time a table of ``min_rows`` rows or
more needs it; smaller tables stay in the party (``None``)."""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import TYPE_CHECKING

from splitrec.config.engine import EngineConfig

if TYPE_CHECKING:
    from splitrec.engine.ray_engine import RayEngine

logger = logging.getLogger(__name__)


class PartyEngine:
    """Picks where a table's work runs; ``where`` names the party for messages."""

    def __init__(self, config: EngineConfig, where: str) -> None:
        self.config = config
        self.where = where
        self._engine: RayEngine | None = None
        self._lock = threading.Lock()
        self._warned = False

    def start(self) -> None:
        """Reaches the cluster the config names now (an ``EngineError`` says why
        it cannot); a local instance waits until a table needs it."""
        if self.config.named:
            self._ray()

    def for_rows(self, rows: int) -> RayEngine | None:
        """The engine for a table of ``rows`` rows: Ray, or None for the
        party's own process and pool (also when Ray is not installed and no
        cluster is named: said once in the log)."""
        if self.config.named:
            return self._ray()
        if rows < self.config.min_rows:
            return None
        if importlib.util.find_spec("ray") is None:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%s: a table of %d rows would run on a local Ray instance "
                    "(engine.min_rows is %d), but Ray is not installed; it runs "
                    "in the party process and its pool (pip install "
                    "'splitrec[engine]' to use Ray)",
                    self.where,
                    rows,
                    self.config.min_rows,
                )
            return None
        return self._ray()

    @property
    def running(self) -> RayEngine | None:
        """The Ray engine, if it was started."""
        return self._engine

    def _ray(self) -> RayEngine:
        with self._lock:
            if self._engine is None:
                from splitrec.engine.ray_engine import connect

                self._engine = connect(self.config, self.where)
            return self._engine

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
