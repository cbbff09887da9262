"""Servers for the benchmark tool's end-to-end tests: this server on random Kokoro, and a tiny fake."""

from __future__ import annotations

import pytest

from server.launcher import launch_server
from tests.benchmarks.fake_speech import create_app
from tests.support.servers import serve_app


@pytest.fixture(scope="module")
def bench_kokoro_server(kokoro_dir):
    args = ("--kokoro-source", str(kokoro_dir), "--device", "cpu", "--torch-threads", "1", "--log-level", "warning")
    with launch_server(*args) as base:
        yield base


@pytest.fixture(scope="module")
def fake_speech_server():
    with serve_app(create_app()) as base:
        yield base


@pytest.fixture
def tiny_texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("# short, so random weights answer fast\nHi there.\nGood morning.\n", encoding="utf-8")
    return path
