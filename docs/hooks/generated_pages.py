"""mkdocs hooks: the parts of the site that are generated from the code.

A page asks for a generated part with a marker on a line of its own:

- `<!-- generated: grpc-api -->`: services, rpcs, messages and fields of
  `proto/splitrec/v1/*.proto`, with their comments;
- `<!-- generated: config-schema party -->` (or `job`): every key of that
  config file, from the config models' JSON Schema;
- `<!-- generated: package-graph -->`: the packages and their imports.

The markers are HTML comments, so the pages read the same on GitHub without
the generated parts.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docgen.config_schema import render_schema  # noqa: E402
from docgen.package_graph import package_markdown  # noqa: E402
from docgen.proto_api import api_markdown  # noqa: E402

MARKER = re.compile(r"^<!-- generated: ([a-z-]+)(?: ([a-z]+))? -->$", re.MULTILINE)
SKIP_CONFIG = "SPLITREC_DOCS_SKIP_CONFIG"
SCHEMA_PROVIDERS = ("splitrec.config.schema", "common.config_schema")


class SchemaProviderMissingError(LookupError):
    """No module provides the config models' JSON Schema yet."""


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a config kind ("party" or "job") from the config models.

    Raises SchemaProviderMissingError when no provider module exists; an error raised
    while importing or running an existing provider goes through unchanged.
    """
    root = str(repo_root())
    if root not in sys.path:
        sys.path.append(root)
    for module_name in SCHEMA_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            # Absent only when the provider module (or a package on its path) is
            # the one missing, not something the provider itself imports.
            name = missing.name or ""
            if name and (module_name == name or module_name.startswith(name + ".")):
                continue
            raise
        return module.json_schema(kind)
    raise SchemaProviderMissingError(
        "no config schema provider: tried " + ", ".join(SCHEMA_PROVIDERS)
    )


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def config_reference(kind: str) -> str:
    try:
        schema = load_schema(kind)
    except SchemaProviderMissingError as missing:
        if os.environ.get(SKIP_CONFIG) == "1":
            return (
                f"!!! note\n    The {kind} config's key reference is left out of "
                f"this build ({SKIP_CONFIG}=1).\n"
            )
        raise PluginError(
            f"cannot generate the {kind} config reference: {missing}. "
            f"Set {SKIP_CONFIG}=1 to build the site without it."
        ) from missing
    return render_schema(schema, kind)


def generated(name: str, argument: str | None) -> str:
    root = repo_root()
    if name == "grpc-api":
        return api_markdown(root / "proto")
    if name == "package-graph":
        return package_markdown(root)
    if name == "config-schema" and argument in ("party", "job"):
        return config_reference(argument)
    raise PluginError(f"unknown generated part: {name} {argument or ''}".strip())


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replaces each marker with its generated markdown."""
    return MARKER.sub(lambda match: generated(match[1], match[2]), markdown)
