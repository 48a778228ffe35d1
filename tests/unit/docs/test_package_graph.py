"""The package diagram, read from the imports of a tiny fake tree."""

from __future__ import annotations

from pathlib import Path

from docgen.package_graph import (
    discover_packages,
    import_graph,
    imported_names,
    mermaid,
    package_markdown,
)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def packaged_tree(root: Path) -> None:
    write(
        root,
        {
            "splitrec/__init__.py": "",
            "splitrec/common/__init__.py": '"""Shared plumbing.\n\nMore."""\n',
            "splitrec/common/paths.py": "import os\n",
            "splitrec/config/__init__.py": "",
            "splitrec/config/job.py": (
                "from splitrec.common.paths import x\nfrom . import party\n"
            ),
            "splitrec/config/party.py": "import yaml\n",
            "splitrec/coordinator/__init__.py": "",
            "splitrec/coordinator/run.py": (
                "import splitrec.config.job\n"
                "from ..common import paths\n"
                "from splitrec.v1 import control_pb2\n"
                "import numpy\n"
            ),
            "splitrec/v1/__init__.py": "",
            "splitrec/v1/control_pb2.py": "",
            "splitrec/cli.py": (
                '"""The commands."""\nfrom splitrec.coordinator import run\n'
            ),
            "tests/test_x.py": "import splitrec.cli\n",
        },
    )


def test_packages_under_splitrec_are_its_sub_packages_and_modules(
    tmp_path: Path,
) -> None:
    packaged_tree(tmp_path)
    found = discover_packages(tmp_path)
    assert sorted(found) == [
        "splitrec.cli",
        "splitrec.common",
        "splitrec.config",
        "splitrec.coordinator",
        "splitrec.v1",
    ]
    assert found["splitrec.cli"] == tmp_path / "splitrec" / "cli.py"


def test_imports_collapse_to_packages(tmp_path: Path) -> None:
    packaged_tree(tmp_path)
    graph = import_graph(discover_packages(tmp_path))
    assert graph == {
        "splitrec.cli": {"splitrec.coordinator"},
        "splitrec.common": set(),
        "splitrec.config": {"splitrec.common"},
        "splitrec.coordinator": {
            "splitrec.common",
            "splitrec.config",
            "splitrec.v1",
        },
        "splitrec.v1": set(),
    }


def test_only_the_given_prefixes_count(tmp_path: Path) -> None:
    packaged_tree(tmp_path)
    graph = import_graph(discover_packages(tmp_path), prefixes=["splitrec.v1"])
    assert graph["splitrec.coordinator"] == {"splitrec.v1"}
    assert graph["splitrec.config"] == set()


def test_folders_mapped_by_pyproject_join_the_splitrec_folder(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": (
                "[tool.setuptools]\n"
                'package-dir = { "splitrec" = "splitrec", '
                '"splitrec.common" = "common", '
                '"splitrec.coordinator" = "coordinator", '
                '"splitrec.v1" = "proto/splitrec/v1", '
                '"splitrec.configs" = "configs" }\n'
            ),
            "splitrec/__init__.py": "",
            "splitrec/models/__init__.py": "from splitrec.common import paths\n",
            "splitrec/models/sub/__init__.py": "from splitrec.v1 import a_pb2\n",
            "common/__init__.py": "",
            "common/paths.py": "import os\n",
            "coordinator/__init__.py": "",
            "coordinator/job.py": "import splitrec.models.sub\n",
            "configs/__init__.py": "",
            "proto/splitrec/v1/__init__.py": "",
            "proto/splitrec/v1/a_pb2.py": "",
        },
    )
    found = discover_packages(tmp_path)
    assert sorted(found) == [
        "splitrec.common",
        "splitrec.coordinator",
        "splitrec.models",
        "splitrec.v1",
    ]
    assert found["splitrec.v1"] == tmp_path / "proto/splitrec/v1"
    graph = import_graph(found)
    assert graph["splitrec.models"] == {"splitrec.common", "splitrec.v1"}
    assert graph["splitrec.coordinator"] == {"splitrec.models"}


def test_relative_imports_resolve_from_modules_and_packages() -> None:
    assert imported_names("from . import b", "pkg.sub.a", False) == {
        "pkg.sub",
        "pkg.sub.b",
    }
    assert imported_names("from .b import c", "pkg.sub", True) == {
        "pkg.sub.b",
        "pkg.sub.b.c",
    }
    assert "pkg.x" in imported_names("from ..x import y", "pkg.sub.a", False)


def test_mermaid_names_every_package_and_arrow() -> None:
    text = mermaid({"a.b": {"c"}, "c": set()})
    assert text.splitlines() == [
        "flowchart LR",
        '    a_b["a.b"]',
        '    c["c"]',
        "    a_b --> c",
    ]


def test_markdown_has_the_fence_and_a_line_per_package(tmp_path: Path) -> None:
    packaged_tree(tmp_path)
    text = package_markdown(tmp_path)
    assert text.startswith("```mermaid\nflowchart LR\n")
    assert (
        "- **`splitrec.common`** (`splitrec/common`): Shared plumbing."
        " Imports no other package." in text
    )
    assert (
        "- **`splitrec.cli`** (`splitrec/cli.py`): The commands."
        " Imports `splitrec.coordinator`." in text
    )
