"""Fixtures: one fake Cartesia per session (reset before each test) and engines pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from engines.cartesia.engine import CartesiaEngine
from server.settings import Settings
from tests.engines.cartesia.fake_cartesia import API_KEY, FakeCartesia
from tests.support.servers import serve_app


@pytest.fixture(scope="session")
def cartesia_server() -> Iterator[FakeCartesia]:
    fake = FakeCartesia()
    with serve_app(fake, wait_ready=False) as base_url:
        fake.base_url = base_url
        yield fake


@pytest.fixture
def fake(cartesia_server: FakeCartesia) -> FakeCartesia:
    cartesia_server.reset()
    return cartesia_server


def settings_for(fake: FakeCartesia, **overrides: Any) -> Settings:
    """Settings aimed at the fake. Every field is explicit so the environment cannot leak in."""
    values: dict[str, Any] = {
        "CARTESIA_API_KEY": API_KEY,
        "cartesia_base_url": fake.base_url,
        "cartesia_connect_timeout_s": 2.0,
        "cartesia_read_timeout_s": 2.0,
        "cartesia_voices_ttl_s": 600.0,
        "cartesia_voices_file": None,
        "cartesia_model_id": "sonic-3",
        "cartesia_version": "2026-03-01",
        "models": ["cartesia/sonic"],
        "api_keys": [],
        "warmup": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_settings(fake: FakeCartesia) -> Callable[..., Settings]:
    return lambda **overrides: settings_for(fake, **overrides)


@pytest.fixture
async def make_engine(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    """``await make_engine(**settings)``: a loaded CartesiaEngine, closed after the test."""
    engines: list[CartesiaEngine] = []

    async def make(**overrides: Any) -> CartesiaEngine:
        engine = CartesiaEngine("cartesia/sonic", make_settings(**overrides).cartesia)
        await engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


@pytest.fixture
async def engine(make_engine: Callable[..., Any]) -> CartesiaEngine:
    return await make_engine()
