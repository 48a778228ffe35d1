"""Models declared in Python: a built-in family by name, or the user's own
Keras functions (the ``custom`` family)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from splitrec.common.errors import ConfigError
from splitrec.config.model import ModelConfig


def _reference(function: Callable, key: str) -> tuple[Path, str]:
    """The folder a party imports ``function``'s module from, and its
    ``module:function`` name there."""
    name = getattr(function, "__name__", "")
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if module is None or path is None or module.__name__ == "__main__":
        raise ConfigError(
            f"model.{key}: {name or function!r} is not defined in a module file, so "
            "a party's process cannot import it; put it in a .py file (in a "
            "notebook: a cell starting with %%writefile my_models.py), import it "
            "from there and pass that function"
        )
    if getattr(function, "__qualname__", name) != name or not name.isidentifier():
        raise ConfigError(
            f"model.{key}: {function.__qualname__!r} is not a module-level "
            "function; define it at the top level of its module"
        )
    if inspect.getmodule(function) is not module:
        raise ConfigError(f"model.{key}: cannot tell where {name!r} is defined")
    # The party loads the module's file by its path (``model.code``): its
    # folder and its name there.
    file = Path(path).resolve()
    return file.parent, f"{file.stem}:{name}"


def custom_model(
    base: Callable,
    output_width: int,
    fuse: Callable | None = None,
    aggregation: str = "concat",
) -> dict[str, Any]:
    """A party's ``model`` section for its own Keras builder functions (see
    ``splitrec.models.custom`` for their signatures): ``base`` at every party,
    ``fuse`` at the label party. The functions must live in a module file;
    the party's own process imports it from there. Checked here; put it
    under ``model`` of the party's config."""
    code, base_name = _reference(base, "base")
    settings: dict[str, Any] = {
        "family": "custom",
        "code": str(code),
        "base": base_name,
        "output_width": output_width,
    }
    if fuse is not None:
        fuse_code, settings["fuse"] = _reference(fuse, "fuse")
        if fuse_code != code:
            raise ConfigError(
                f"model.fuse: {fuse.__name__!r} is imported from {fuse_code}, the "
                f"base from {code}; keep both builders under one folder"
            )
        settings["aggregation"] = aggregation
    ModelConfig.model_validate({**settings, "tasks": 1 if fuse is not None else 0})
    return settings
