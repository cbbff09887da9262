"""Fixtures of the reliability tests: the stand-in engine's shared server (as tests/server has)."""

from __future__ import annotations

import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app


@pytest.fixture(scope="module")
def api():
    """One shared server around the stand-in engine: ``(base_url, engine)``."""
    engine = FakeEngine()
    with serve_app(create_app(Settings(warmup=False), engines={engine.model_id: engine})) as base:
        yield base, engine
