"""Which package imports which, read from the code with `ast`.

Every module is collapsed into the package that owns it (the deepest package
folder holding its file), and only imports of the project's own packages count.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

# Mapped folders that hold data, not code (the example configs and models).
DATA_PACKAGES = ("splitrec.configs", "splitrec.examples")


def _package_dirs(root: Path) -> dict[str, str]:
    """pyproject.toml's ``[tool.setuptools] package-dir``: package -> folder."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    settings = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return dict(settings.get("tool", {}).get("setuptools", {}).get("package-dir", {}))


def discover_packages(root: Path) -> dict[str, Path]:
    """Package name -> folder (or single module file) for the tree at `root`.

    The top-level packages of ``splitrec``: the folders pyproject.toml maps into
    it (``party_server/`` is ``splitrec.party_server``, ``proto/splitrec/v1`` is
    ``splitrec.v1``) and the sub-packages and modules of the ``splitrec/`` folder.
    """
    found: dict[str, Path] = {}
    for name, folder in _package_dirs(root).items():
        is_code = (root / folder / "__init__.py").exists()
        if name.count(".") == 1 and name not in DATA_PACKAGES and is_code:
            found[name] = root / folder
    base = root / "splitrec"
    if base.is_dir():
        for child in sorted(base.iterdir()):
            if child.is_dir() and (child / "__init__.py").exists():
                found[f"splitrec.{child.name}"] = child
            elif child.suffix == ".py" and child.stem not in ("__init__", "__main__"):
                found[f"splitrec.{child.stem}"] = child
    return found


def default_prefixes(packages: Mapping[str, str | Path]) -> list[str]:
    """The import names that count as the project's: the packages' top names."""
    return sorted({name.split(".")[0] for name in packages})


def _matches(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


def owner(module: str, packages: Mapping[str, str | Path]) -> str | None:
    """The package a dotted module name belongs to: its longest package prefix."""
    best = None
    for name in packages:
        if _matches(module, name) and (best is None or len(name) > len(best)):
            best = name
    return best


def modules(packages: Mapping[str, Path]) -> dict[Path, str]:
    """Every .py file under the packages, by its dotted module name.

    A file under several package folders belongs to the deepest of them.
    """
    found: dict[Path, tuple[int, str]] = {}
    for name, location in packages.items():
        location = Path(location)
        files = [location] if location.is_file() else sorted(location.rglob("*.py"))
        for path in files:
            if location.is_file():
                parts: list[str] = []
            else:
                parts = list(path.relative_to(location).with_suffix("").parts)
            if parts and parts[-1] == "__init__":
                parts.pop()
            depth = len(location.resolve().parts)
            key = path.resolve()
            if key not in found or found[key][0] < depth:
                found[key] = (depth, ".".join([name, *parts]))
    return {path: module for path, (_, module) in found.items()}


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Dotted names a module's source imports (relative imports resolved)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                anchor = ".".join(parts[: max(keep, 0)])
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name}


def import_graph(
    packages: Mapping[str, str | Path], prefixes: Sequence[str] | None = None
) -> dict[str, set[str]]:
    """Package -> the other packages it imports (only names under `prefixes`)."""
    paths = {name: Path(location) for name, location in packages.items()}
    prefixes = list(prefixes) if prefixes is not None else default_prefixes(paths)
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for path, module in modules(paths).items():
        source_package = owner(module, paths)
        if source_package is None:
            continue
        is_package = path.name == "__init__.py"
        source = path.read_text(encoding="utf-8")
        for name in imported_names(source, module, is_package):
            if not any(_matches(name, prefix) for prefix in prefixes):
                continue
            target = owner(name, paths)
            if target and target != source_package:
                graph[source_package].add(target)
    return graph


def _node_id(name: str) -> str:
    return name.replace(".", "_")


def mermaid(graph: Mapping[str, set[str]]) -> str:
    """A mermaid flowchart: one node per package, an arrow per import."""
    lines = ["flowchart LR"]
    for name in sorted(graph):
        lines.append(f'    {_node_id(name)}["{name}"]')
    for name in sorted(graph):
        for target in sorted(graph[name]):
            lines.append(f"    {_node_id(name)} --> {_node_id(target)}")
    return "\n".join(lines)


def summary(location: Path) -> str:
    """The first line of a package's (or module's) docstring, or ''."""
    location = Path(location)
    init = location / "__init__.py" if location.is_dir() else location
    if not init.exists():
        return ""
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def package_markdown(root: Path, packages: Mapping[str, Path] | None = None) -> str:
    """The diagram in a mermaid fence and the list of packages with their imports."""
    packages = dict(packages) if packages is not None else discover_packages(root)
    graph = import_graph(packages)
    out = ["```mermaid", mermaid(graph), "```", ""]
    for name in sorted(graph):
        where = Path(packages[name]).resolve()
        if where.is_relative_to(root.resolve()):
            where = where.relative_to(root.resolve())
        line = f"- **`{name}`** (`{where.as_posix()}`)"
        text = summary(packages[name])
        line += f": {text}" if text else "."
        uses = ", ".join(f"`{target}`" for target in sorted(graph[name]))
        line += f" Imports {uses}." if uses else " Imports no other package."
        out.append(line)
    return "\n".join(out) + "\n"
