"""Fixtures: tiny random Orpheus weights on disk (session), engines that load them like production.

The weights are built once per session (about 10 s). ``orpheus_engine`` loads through the real
loader (``OrpheusEngine.load``); ``make_engine`` builds further engines with other settings that
reuse the already loaded model, tokenizer and codec, so each test does not pay for loading again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.models.orpheus import build_all
from engines.orpheus import loader
from engines.orpheus.codec import SnacCodec
from engines.orpheus.engine import OrpheusEngine
from engines.orpheus.settings import ORPHEUS_MODEL
from server.settings import Settings


@pytest.fixture(scope="session")
def orpheus_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return build_all(tmp_path_factory.mktemp("orpheus-tiny"))


def settings_for(dirs: tuple[Path, Path], **overrides) -> Settings:
    lm, snac = dirs
    values = {
        "models": [ORPHEUS_MODEL],
        "orpheus_source": str(lm),
        "orpheus_snac_source": str(snac),
        "device": "cpu",
        "offline": True,
        "max_wait_ms": 20.0,
        "orpheus_max_tokens": 35,
        "warmup": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def orpheus_settings(orpheus_dirs) -> Settings:
    return settings_for(orpheus_dirs)


@pytest.fixture(scope="session")
def orpheus_engine(orpheus_settings) -> Iterator[OrpheusEngine]:
    """Loaded through the production path. Jobs bind to the loop that submits them, so one engine
    serves every test's event loop."""
    engine = OrpheusEngine(ORPHEUS_MODEL, orpheus_settings.orpheus)
    asyncio.run(engine.load())
    yield engine
    asyncio.run(engine.close())


@pytest.fixture(scope="session")
def orpheus_parts(orpheus_engine) -> loader.OrpheusComponents:
    """What the session engine loaded (model, tokenizer, SNAC), for tests below the engine."""
    assert orpheus_engine.components is not None
    return orpheus_engine.components


@pytest.fixture(scope="session")
def snac_codec(orpheus_parts) -> SnacCodec:
    return SnacCodec(orpheus_parts.snac, "cpu")


@pytest.fixture
def make_engine(orpheus_dirs, orpheus_parts, monkeypatch) -> Iterator[Callable[..., OrpheusEngine]]:
    """``await make_engine(**settings)`` -> a loaded engine sharing the session's weights."""

    def shared_parts(
        settings,
    ) -> loader.OrpheusComponents:  # the weights shared, the length as each engine's settings say
        limit = loader.resolve_max_model_len(settings.max_model_len, orpheus_parts.lm_path)
        return dataclasses.replace(orpheus_parts, max_model_len=limit)

    monkeypatch.setattr(loader, "load_all", shared_parts)
    made: list[OrpheusEngine] = []

    async def make(**overrides) -> OrpheusEngine:
        engine = OrpheusEngine(ORPHEUS_MODEL, settings_for(orpheus_dirs, **overrides).orpheus)
        await engine.load()
        made.append(engine)
        return engine

    yield make
    for engine in made:
        if engine.worker is not None:
            asyncio.run(engine.close())
