"""The engines this process serves, keyed by canonical model name, and their readiness."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from engines import registry
from engines.base import Engine
from server.errors import APIError, ModelNotFound, ServiceUnavailable
from server.settings import Settings

logger = logging.getLogger(__name__)


class EnginePool:
    def __init__(self, settings: Settings, engines: dict[str, Engine] | None = None) -> None:
        self.settings = settings
        if engines is None:
            engines = {}
            for name in settings.models:
                engine = registry.create_engine(name, settings)
                engines[engine.model_id] = engine
        self.engines = engines
        self.state = "loading"  # loading -> ready | failed
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm every engine in the background, so liveness answers during loading."""
        self._task = asyncio.create_task(self._load_all(), name="engine-pool-load")

    async def wait_ready(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _load_all(self) -> None:
        started = time.perf_counter()
        try:
            for model_id, engine in self.engines.items():
                logger.info("loading %s", model_id)
                await engine.load()
                if self.settings.warmup and engine.available:
                    await engine.warmup()
        except Exception as exc:
            self.state = "failed"
            self.error = exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"
            logger.error("model loading failed: %s", self.error, exc_info=not isinstance(exc, APIError))
            return
        self.state = "ready"
        logger.info("ready in %.1fs: %s", time.perf_counter() - started, ", ".join(self.engines))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        await asyncio.gather(*(e.close() for e in self.engines.values()), return_exceptions=True)

    # -- lookup -------------------------------------------------------------------------------
    def lookup(self, name: str) -> Engine:
        """The engine serving ``name`` (any alias), even if it is still loading."""
        spec = registry.resolve(name)
        engine = self.engines.get(spec.model_id)
        if engine is None:
            loaded = ", ".join(self.engines) or "none"
            raise ModelNotFound(f"Model '{name}' is not loaded on this server (loaded: {loaded}).")
        return engine

    def get_ready(self, name: str) -> Engine:
        engine = self.lookup(name)
        if self.state == "loading":
            raise ServiceUnavailable("Models are still loading; retry shortly.", headers={"Retry-After": "5"})
        if self.state == "failed":
            raise ServiceUnavailable(f"Model loading failed: {self.error}")
        return engine

    def stats(self) -> dict[str, Any]:
        return {name: engine.stats() for name, engine in self.engines.items()}
