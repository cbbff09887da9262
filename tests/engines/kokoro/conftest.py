"""Kokoro engine tests run the real KModel architecture with random weights (see support/)."""

from __future__ import annotations

import asyncio

import pytest

from engines.kokoro.engine import KokoroEngine
from server.settings import Settings


@pytest.fixture(scope="session")
def kokoro_settings(kokoro_dir) -> Settings:
    return Settings(kokoro_source=str(kokoro_dir), device="cpu", first_segment_chars=60, segment_chars=200)


@pytest.fixture(scope="session")
def kokoro_engine(kokoro_settings):
    """One engine loaded the way production loads it, shared by the engine tests.

    The model lives on the engine's worker thread, so tests in other event loops can use it.
    """
    engine = KokoroEngine("hexgrad/Kokoro-82M", kokoro_settings)
    asyncio.run(engine.load())
    yield engine
    asyncio.run(engine.close())
