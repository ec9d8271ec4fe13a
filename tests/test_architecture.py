"""The layout's promises, checked on the source: a pure core, small modules, no import cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_failnotify"
MAX_MODULE_LINES = 450
FORBIDDEN_IN_CORE = ("airflow", "sqlalchemy", "flask", "flask_appbuilder")


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Absolute names imported; with ``module_level_only``, skipping function bodies and TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    nodes: list[ast.AST] = list(tree.body) if module_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.If) and module_level_only:
            test = node.test
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                continue
            nodes.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try) and module_level_only:
            nodes.extend(node.body + [n for h in node.handlers for n in h.body])
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = dict(_modules())


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith("airflow_failnotify.core")])
def test_the_core_imports_nothing_from_airflow_sqlalchemy_or_flask(name: str) -> None:
    imported = _imports(MODULES[name], module_level_only=False)
    bad = sorted(i for i in imported if i.split(".")[0] in FORBIDDEN_IN_CORE)
    assert not bad, f"{name} imports {bad}"


def test_no_module_of_the_package_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    assert {n: s for n, s in sizes.items() if s > MAX_MODULE_LINES} == {}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_no_import_cycle_between_package_modules() -> None:
    graph = {
        name: {i for i in _imports(path, module_level_only=True) if i in MODULES and i != name}
        for name, path in MODULES.items()
    }
    # A package's __init__ re-exporting its own submodules is not a cycle of concern.
    for name in graph:
        graph[name] = {i for i in graph[name] if not i.startswith(name + ".")}
    assert sorted(name for name in graph if name in _reachable(graph, name)) == []
