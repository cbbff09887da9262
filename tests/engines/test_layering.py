"""Layering runs one way: server/ depends on engines/, never the reverse."""

import ast
from pathlib import Path

ENGINES = Path(__file__).resolve().parents[2] / "engines"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_engine_module_imports_the_server():
    offenders = {
        str(path.relative_to(ENGINES.parent)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "server")
        for path in ENGINES.rglob("*.py")
    }
    assert not {path: mods for path, mods in offenders.items() if mods}


def test_the_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from server.errors import APIError\n    import server.settings\n")
    assert imported_modules(sample) == {"server.errors", "server.settings"}
