"""Layering runs one way: server/ depends on engines/, never the reverse; benchmarks/ may use both,
but neither server/ nor benchmarks/ (both shipped in the wheel) imports tests/, the server never
imports the benchmarks (`tts-server bench` is an entry point), and no modules import each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ROOT / "engines"


def imported_modules(path: Path) -> set[str]:
    """Every absolute import in the file, wherever it sits (functions, TYPE_CHECKING blocks)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from engines.cartesia import upstream_errors` imports a module, not only the package.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same top-level package it imports."""
    graph = {module_name(path): imported_modules(path) for path in (ROOT / package).rglob("*.py")}
    return {name: {m for m in imports if m in graph and m != name} for name, imports in graph.items()}


def offenders(package: str, forbidden: str) -> dict[str, list[str]]:
    found = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == forbidden)
        for path in (ROOT / package).rglob("*.py")
    }
    return {path: mods for path, mods in found.items() if mods}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("engines", "server"), ("engines", "benchmarks"), ("engines", "tests"), ("server", "benchmarks")]
    + [("server", "tests"), ("benchmarks", "tests")],
)
def test_no_import_against_the_layers(package, forbidden):
    assert not offenders(package, forbidden)


@pytest.mark.parametrize("package", ["engines", "server", "benchmarks"])
def test_no_modules_import_each_other(package):
    graph = package_modules(package)
    # A package's __init__ importing its own modules is how packages re-export; not a cycle of code.
    graph = {name: {m for m in imports if not name.startswith(m + ".")} for name, imports in graph.items()}
    assert not cycles(graph)


def test_the_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from server.errors import APIError\n    import server.settings\n")
    assert imported_modules(sample) == {"server.errors", "server.errors.APIError", "server.settings"}


def test_the_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
