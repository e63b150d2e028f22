"""The import graph keeps the layering of docs/architecture.md: no circles, arrows point down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("segment_rules", "state", "streams", "insights")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules `path` imports, at any depth of the file (functions, TYPE_CHECKING).

    `from pkg import sub` counts as importing `pkg.sub` when that is a module, else `pkg`.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    files = {
        _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }
    files["livesegments_error"] = ROOT / "livesegments_error.py"
    return {name: _imports(path, name, set(files)) for name, path in files.items()}


GRAPH = _graph()


def _reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in GRAPH.get(node, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_the_graph_is_read() -> None:
    # the checks below mean something only if the graph holds the project's real imports
    assert "streams.control.context" in GRAPH["streams.control.segments"]
    assert "streams.control.exports" in GRAPH["streams.control.segments"]
    assert "livesegments_error" in GRAPH["segment_rules.errors"]


def test_no_import_circles() -> None:
    on_circles = sorted(name for name in GRAPH if _reaches(name, name))
    assert on_circles == [], f"modules on an import circle: {on_circles}"


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("livesegments_error", "segment_rules"),
        ("segment_rules", "state"),
        ("segment_rules", "streams"),
        ("state", "streams"),
        ("segment_rules", "insights"),
        ("state", "insights"),
        ("insights", "streams"),
        ("insights", "state"),
        ("streams.engine", "streams.control"),
        ("streams.control", "streams.engine"),
        ("streams.control", "streams.web"),
        ("streams.engine", "streams.web"),
        ("streams.operator", "streams.engine"),
        ("streams.operator", "streams.control"),
    ],
)
def test_arrows_point_down(lower: str, upper: str) -> None:
    wrong = sorted(
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        if name == lower or name.startswith(lower + ".")
        for dep in deps
        if dep == upper or dep.startswith(upper + ".")
    )
    assert wrong == [], f"{lower} must not import {upper}: {wrong}"


def test_handler_modules_do_not_import_what_registers_them() -> None:
    for registrar, handlers in (
        ("streams.control.runtime", ("segments", "lifecycle", "jobs", "exports")),
        ("streams.web.app", ("segments", "jobs", "schedules", "exports", "insights", "api")),
        ("streams.operator.cli", ("jobs", "schedules", "exports", "insights", "inputs")),
    ):
        package = registrar.rpartition(".")[0]
        for handler in handlers:
            module = f"{package}.{handler}"
            assert module in GRAPH, module
            assert not _reaches(module, registrar), f"{module} reaches {registrar}"
