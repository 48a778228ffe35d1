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


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def config_reference(kind: str) -> str:
    """Every key of the ``kind`` config, from the config models' JSON Schema."""
    from splitrec.config.schema import json_schema

    return render_schema(json_schema(kind), kind)


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
