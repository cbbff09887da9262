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


@pytest.fixture(scope="module")
def reference_pipeline(kokoro_dir):
    """kokoro's own loader and pipeline on the same weights: the reference implementation."""
    from kokoro import KModel, KPipeline

    from engines.kokoro.g2p import spacy_model_alias

    model = KModel(
        repo_id=MODEL, config=str(kokoro_dir / "config.json"), model=str(kokoro_dir / "kokoro-v1_0.pth")
    ).eval()
    with spacy_model_alias():
        return KPipeline(lang_code="a", repo_id=MODEL, model=model)


def segments_for(engine: KokoroEngine, text: str) -> list[str]:
    """The segments the engine's settings cut ``text`` into."""
    from engines.text import segment_text

    s = engine.settings
    return segment_text(
        text, first_chars=s.first_segment_chars, max_chars=s.segment_chars, min_chars=s.segment_min_chars
    )
