"""The shape of the code: no import cycle between modules (at import time:
imports inside functions and under ``TYPE_CHECKING`` are left out), none between
the packages of ``splitrec`` (any import counts), and the config layer apart
from the models and from TLS credentials."""

from __future__ import annotations

import ast
from pathlib import Path

from docgen.package_graph import discover_packages, modules
from docgen.package_graph import import_graph as package_graph

ROOT = Path(__file__).resolve().parents[2]


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Names imported by statements run at import time."""
    found: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append(node.module)
                found.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the project's modules it imports at import time (a module's
    parent packages count as imported, as Python runs their ``__init__``)."""
    files = {name: path for path, name in modules(discover_packages(ROOT)).items()}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for imported in _top_level_imports(tree):
            parts = imported.split(".")
            for end in range(1, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate in files and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as its modules in order (empty when none)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _is_package_edge(source: str, target: str) -> bool:
    """A package's ``__init__`` importing its own submodule is no cycle."""
    return target.startswith(source + ".")


def test_the_project_has_no_import_cycle():
    graph = {
        name: {t for t in targets if not _is_package_edge(name, t)}
        for name, targets in import_graph().items()
    }

    cycle = find_cycle(graph)

    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_the_packages_have_no_import_cycle():
    graph = package_graph(discover_packages(ROOT))
    assert {"splitrec.common", "splitrec.config", "splitrec.v1"} <= set(graph)

    cycle = find_cycle(graph)

    assert cycle == [], "package cycle: " + " -> ".join(cycle)


def test_shared_pieces_import_none_of_the_processes():
    graph = package_graph(discover_packages(ROOT))
    processes = {"splitrec.party_server", "splitrec.coordinator", "splitrec.bench"}
    for package in ("common", "config", "models", "datasets", "privacy", "wire"):
        assert not graph[f"splitrec.{package}"] & processes, package
    assert graph["splitrec.common"] == set()


def test_a_cycle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_config_layer_does_not_import_models_or_tls_credentials():
    graph = import_graph()
    config_layer = (
        "splitrec.config.party",
        "splitrec.config.base",
        "splitrec.config.reader",
        "splitrec.config.serving",
        "splitrec.config.tls",
        "splitrec.config.families",
        "splitrec.config.limits",
    )
    for module in config_layer:
        imported = graph[module]
        assert not {m for m in imported if m.startswith("splitrec.models")}, module
        assert "splitrec.security.tls" not in imported, module
