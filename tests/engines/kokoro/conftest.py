"""Kokoro engine tests run the real KModel architecture with random weights (see support/)."""

from __future__ import annotations

import asyncio

import pytest

from engines.kokoro.engine import KokoroEngine
from server.settings import Settings

MODEL = "hexgrad/Kokoro-82M"


def kokoro_settings_for(kokoro_dir, **overrides) -> Settings:
    base = dict(kokoro_source=str(kokoro_dir), device="cpu", first_segment_chars=60, segment_chars=200)
    return Settings(**{**base, **overrides})


@pytest.fixture(scope="session")
def kokoro_settings(kokoro_dir) -> Settings:
    return kokoro_settings_for(kokoro_dir)


@pytest.fixture(scope="session")
def kokoro_engine(kokoro_settings):
    """One engine loaded the way production loads it, shared by the engine tests.

    The model lives on the engine's worker thread, so tests in other event loops can use it.
    """
    engine = KokoroEngine(MODEL, kokoro_settings.kokoro)
    asyncio.run(engine.load())
    yield engine
    asyncio.run(engine.close())


@pytest.fixture
async def make_kokoro(kokoro_dir):
    """``await make_kokoro(**settings)``: a fresh engine with its own settings, closed after the test."""
    engines: list[KokoroEngine] = []

    async def make(**overrides) -> KokoroEngine:
        engine = KokoroEngine(MODEL, kokoro_settings_for(kokoro_dir, **overrides).kokoro)
        await engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()
