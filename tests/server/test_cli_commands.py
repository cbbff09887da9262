"""`tts-server bench` comes from the benchmarks package through an entry point: the server never imports it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import SimpleNamespace

import server.cli
from server.cli import COMMANDS_GROUP, main

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_project_declares_bench_as_a_command_and_it_resolves():
    text = PYPROJECT.read_text()
    table = text.split(f'[project.entry-points."{COMMANDS_GROUP}"]', 1)[1].split("\n[", 1)[0]
    target = re.search(r'^bench = "([\w.]+:\w+)"', table, re.M)
    assert target is not None, table
    module, _, name = target.group(1).partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_bench_runs_the_registered_command_with_its_own_arguments(monkeypatch):
    seen: list[list[str]] = []

    def fake_bench(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    entry = SimpleNamespace(name="bench", load=lambda: fake_bench)
    monkeypatch.setattr(server.cli, "entry_points", lambda group: [entry] if group == COMMANDS_GROUP else [])
    assert main(["bench", "--concurrency", "1", "--device", "cpu"]) == 7
    assert seen == [["--concurrency", "1", "--device", "cpu"]]


def test_without_the_benchmarks_bench_says_so(monkeypatch, capsys):
    monkeypatch.setattr(server.cli, "entry_points", lambda group: [])
    assert main(["bench"]) == 2
    assert "benchmarks package" in capsys.readouterr().err


def test_a_declared_command_whose_package_is_missing_says_so(monkeypatch, capsys):
    def load():
        raise ModuleNotFoundError("No module named 'benchmarks'")  # the Docker image ships no benchmarks

    monkeypatch.setattr(server.cli, "entry_points", lambda group: [SimpleNamespace(name="bench", load=load)])
    assert main(["bench", "--help"]) == 2
    assert "not installed" in capsys.readouterr().err
