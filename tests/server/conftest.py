"""API-layer tests run a real uvicorn server around a stand-in engine (see support/fake_engine.py)."""

from __future__ import annotations

import contextlib

import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app


@pytest.fixture
def fake_server():
    """``with fake_server(engine=..., **settings) as (base_url, engine)``."""

    @contextlib.contextmanager
    def start(engine: FakeEngine | None = None, **settings):
        engine = engine or FakeEngine()
        app = create_app(Settings(**settings), engines={engine.model_id: engine})
        with serve_app(app) as base:
            yield base, engine

    return start


@pytest.fixture(scope="module")
def api():
    """One shared server for read-only tests: ``(base_url, engine)``."""
    engine = FakeEngine()
    app = create_app(Settings(), engines={engine.model_id: engine})
    with serve_app(app) as base:
        yield base, engine
