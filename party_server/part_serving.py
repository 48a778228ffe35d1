"""A party's part of online scoring: the served model version and its entity
table, loaded at start-up and kept current.

Every party that has a ``serving`` section loads the configured exported
version of its part and its entity table. A watcher checks the table file every
``reload_seconds`` and, when it changed, loads the new file beside the old one
and swaps it in only when it is complete and valid: requests keep being
answered from the old table meanwhile, and a bad file changes nothing (the
problem is logged and reported). A version not exported yet is looked for again
at each check. A party holds up to ``MAX_HELD`` versions at once: the label
party names the version of every request, so a switch to a new version (see
``splitrec.party_server.label_serving``) never mixes two.

A feature party computes its whole table's outputs whenever it loads a table
or version, so an answer to the label party is a lookup.

A version whose files do not match their export's list, and a table that
cannot be read, are kept out: the party goes on with what it had, and its
serving status (``GetServingStatus`` at the label party, ``GetStatus`` at
every party) lists what was kept out and why until a load succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from splitrec.common.errors import (
    DataError,
    NotAllowedError,
    NotServingError,
    RequestTooLargeError,
    UnknownJobError,
)
from splitrec.common.online import Embedded, KeptOut, PartView, Pushed, ServingView
from splitrec.common.paths import confined
from splitrec.config.party import PartyConfig
from splitrec.config.serving import ServingConfig
from splitrec.party_server.entity_table import (
    EntityTable,
    file_signature,
    load_entity_table,
)
from splitrec.party_server.export_files import folder_signature
from splitrec.party_server.model_export import model_folder
from splitrec.party_server.served_model import ServedModel, load_served_model

logger = logging.getLogger(__name__)

# The most keys one Embed request may ask for.
MAX_EMBED_KEYS = 100_000
# Entities per chunk of pushed outputs.
PUSH_CHUNK = 4096
# Versions a party keeps loaded at once (the current one, the one being
# switched to, and one before).
MAX_HELD = 3


@dataclass(frozen=True)
class Served:
    """What answers requests now: one model version and one table."""

    model: ServedModel
    table: EntityTable
    # A feature party's outputs of every table row, ``[entities, width]``.
    outputs: np.ndarray | None = None


@contextlib.contextmanager
def encoding(table: EntityTable) -> Iterator[None]:
    """Turns a failure of the model on the table's values (TensorFlow names
    the bad value its own way) into a ``DataError`` naming the table."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - whatever TensorFlow raised
        first = (str(exc).splitlines() or [""])[0]
        raise DataError(
            f"entity table {table.path}: the model cannot encode it: "
            f"{type(exc).__name__}: {first}"
        ) from None


class PartServing:
    def __init__(
        self,
        config: PartyConfig,
        on_ready: Callable[[bool], None] = lambda ready: None,
    ) -> None:
        assert config.serving is not None
        self.party = config.party
        self.settings: ServingConfig = config.serving
        self._output_dir = config.output_dir
        self._on_ready = on_ready
        # The version requests use now, and every version held, each with
        # the table it answers from.
        self.version = self.settings.version
        self._served: dict[str, Served] = {}
        self._table: EntityTable | None = None
        self.problem = "starting"
        # What was refused, by (kind, name), and each refused version's folder
        # as it was then (it is checked again once something in it changes).
        self.kept_out: dict[tuple[str, str], KeptOut] = {}
        self._refused_at: dict[str, tuple] = {}
        self._load_lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Loads once now, then watches the table file in the background."""
        self.refresh()
        self._watcher = threading.Thread(
            target=self._watch, name="serving-watch", daemon=True
        )
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.reload_seconds):
            try:
                self.refresh()
            except OSError as exc:
                # A version folder replaced while it was read (a file gone
                # between listing and reading it): the next look sees it whole.
                logger.warning(
                    "serving: reading the exported versions failed (%s); "
                    "looking again in %g s",
                    exc,
                    self.settings.reload_seconds,
                )

    def current(self) -> Served:
        served = self._served.get(self.version)
        if served is None:
            raise self._not_serving()
        return served

    def _not_serving(self) -> NotServingError:
        return NotServingError(f"party {self.party} is not serving: {self.problem}")

    def _failed(self, exc: DataError) -> None:
        if str(exc) != self.problem:
            logger.error("serving: %s", exc)
        self.problem = str(exc)

    def keep_out(self, kind: str, name: str, reason: str) -> None:
        """Notes a refused version, table or part (shown in the status)."""
        self.kept_out[(kind, name)] = KeptOut(kind, name, reason)

    def let_in(self, kind: str, name: str) -> None:
        self.kept_out.pop((kind, name), None)

    def refresh(self) -> None:
        """Loads the current version if it is not loaded yet, and the table if
        its file changed; keeps what it has when either fails."""
        with self._load_lock:
            table = self._table
            changed = table is None or table.signature != file_signature(
                self.settings.table
            )
            if not changed and self.version in self._served:
                return
            try:
                models = {v: s.model for v, s in self._served.items()}
                if self.version not in models:
                    models[self.version] = self._load_model(self.version)
                self._install(models, reread=changed)
            except DataError as exc:
                self._failed(exc)
                if self.version not in self._served:
                    self._on_ready(False)
                return
            self.problem = ""
            self._on_ready(True)

    def _install(self, models: dict[str, ServedModel], reread: bool) -> None:
        """Makes ``models`` the held versions: with ``reread`` (or when a model
        needs columns the table in use lacks) over the table read again, each
        version prepared anew; otherwise over the table in use, preparing only
        the versions not held yet."""
        columns = tuple(dict.fromkeys(c for m in models.values() for c in m.inputs))
        table = self._table
        path = str(self.settings.table)
        try:
            if reread or table is None or not set(columns) <= set(table.columns):
                table = load_entity_table(
                    self.settings.table, self.settings.key, columns
                )
            kept = {} if table is not self._table else self._served
            served = {
                v: kept[v] if v in kept else self._prepare(m, table)
                for v, m in models.items()
            }
        except DataError as exc:
            self.keep_out("table", path, str(exc))
            raise
        self.let_in("table", path)
        old = self._served.get(self.version)
        self._table, self._served = table, served
        self.swapped(old, served[self.version])
        logger.info(
            "serving versions %s of job %s (current %s) with %d entities from %s "
            "(digest %s)",
            sorted(served),
            self.settings.job,
            self.version,
            len(table),
            table.path,
            table.digest[:12],
        )

    def hold(self, version: str) -> Served:
        """``version`` loaded beside the others (from the export, at once);
        the oldest versions other than the current one are let go beyond
        ``MAX_HELD``."""
        served = self._served.get(version)  # no wait while a table reloads
        if served is not None:
            return served
        with self._load_lock:
            served = self._served.get(version)
            if served is not None:
                return served
            if self._table is None:
                refused = self.kept_out.get(("version", version))
                if refused is not None:  # refused, not merely not ready yet
                    raise DataError(refused.reason)
                raise self._not_serving()
            models = {v: s.model for v, s in self._served.items()}
            models[version] = self._load_model(version)
            while len(models) > MAX_HELD:
                oldest = next(v for v in models if v not in (self.version, version))
                del models[oldest]
            self._install(models, reread=False)
            return self._served[version]

    def _load_model(self, version: str) -> ServedModel:
        """The party's part ``version``, checked; a version refused before is
        refused again at once while its folder is as it was then."""
        folder = model_folder(confined(self._output_dir, self.settings.job), version)
        signature = folder_signature(folder)
        refused = self.kept_out.get(("version", version))
        if refused is not None and self._refused_at.get(version) == signature:
            raise DataError(refused.reason)
        try:
            model = load_served_model(
                self._output_dir, self.party, self.settings.job, version
            )
            self.check_model(model)
        except DataError as exc:
            self.keep_out("version", version, str(exc))
            self._refused_at[version] = signature
            raise
        self.let_in("version", version)
        self._refused_at.pop(version, None)
        return model

    def check_model(self, model: ServedModel) -> None:
        """Refuses a part of the wrong role (``DataError``)."""

    def _prepare(self, model: ServedModel, table: EntityTable) -> Served:
        return Served(model, table)

    def swapped(self, old: Served | None, new: Served) -> None:
        """Called after ``new`` replaced ``old``."""

    def own_part(self, served: Served) -> PartView:
        model, table = served.model, served.table
        return PartView(
            self.party, model.digest, table.key, len(table), table.digest, model.export
        )

    def view(self) -> ServingView:
        """The version served, this party's part and what was kept out."""
        served = self._served.get(self.version)
        kept_out = tuple(self.kept_out.copy().values())  # others write it
        if served is None:
            return ServingView(
                False,
                self.problem,
                self.settings.job,
                self.version,
                kept_out=kept_out,
            )
        return ServingView(
            True,
            "",
            served.model.job,
            served.model.version,
            parts=(self.own_part(served),),
            kept_out=kept_out,
        )


class FeatureServing(PartServing):
    """A feature party's part: answers its label party's ``Embed`` requests."""

    def check_model(self, model: ServedModel) -> None:
        if model.label:
            raise DataError(
                f"{model.folder} is a label party's part; party {self.party} holds "
                "no labels"
            )

    def _prepare(self, model: ServedModel, table: EntityTable) -> Served:
        with encoding(table):
            outputs = model.hidden(table.columns)
        return Served(model, table, outputs)

    def _check_caller(self, job: str, caller: str) -> None:
        if caller != self.settings.label_party:
            raise NotAllowedError(
                f"party {self.party} answers its label party "
                f"{self.settings.label_party!r} only, not {caller!r}"
            )
        if job != self.settings.job:
            raise UnknownJobError(
                f"party {self.party} serves versions of job {self.settings.job!r}, "
                f"not of {job!r}; check serving.model at every party"
            )

    def prepare_version(self, job: str, version: str, caller: str) -> Served:
        """Loads ``version`` for a switch the label party is about to make;
        one held but not served whose files changed since is loaded again
        (checked anew)."""
        self._check_caller(job, caller)
        with self._load_lock:
            held = self._served.get(version)
            if (
                held is not None
                and version != self.version
                and folder_signature(held.model.folder) != held.model.signature
            ):
                self._served = {v: s for v, s in self._served.items() if v != version}
        return self.hold(version)

    def embed(self, job: str, version: str, caller: str, keys: list[str]) -> Embedded:
        """The outputs of ``keys`` under ``version`` for the label party."""
        self._check_caller(job, caller)
        if len(keys) > MAX_EMBED_KEYS:
            raise RequestTooLargeError(
                f"{len(keys)} keys in one Embed request; at most {MAX_EMBED_KEYS}"
            )
        served = self.hold(version)
        positions = served.table.positions(keys)
        known = positions >= 0
        assert served.outputs is not None
        return Embedded(
            served.model.digest,
            served.table.digest,
            served.outputs[positions[known]],
            np.flatnonzero(~known).astype(np.int32),
            served.model.export,
        )

    def pushed(self, job: str, version: str, caller: str) -> Iterator[Pushed]:
        """Every entity's output under ``version`` in chunks, when the party's
        config allows it (``serving.push``)."""
        self._check_caller(job, caller)
        if not self.settings.push:
            raise NotAllowedError(
                f"party {self.party} does not push its outputs (serving.push is "
                "off in its config)"
            )
        served = self.hold(version)
        keys = list(served.table.index)
        assert served.outputs is not None
        for start in range(0, len(keys), PUSH_CHUNK):
            yield Pushed(
                served.model.digest,
                served.table.digest,
                keys[start : start + PUSH_CHUNK],
                served.outputs[start : start + PUSH_CHUNK],
                served.model.export,
            )
