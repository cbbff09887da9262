"""The engines this process serves, keyed by canonical model name, and their readiness."""

from __future__ import annotations

import asyncio
import contextlib
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
        # Per model, so one model still loading (or failed) never holds back the others.
        self.status: dict[str, str] = {name: "loading" for name in engines}  # loading | ready | failed
        self.errors: dict[str, str] = {}
        self._task: asyncio.Task[Any] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm every engine in the background, so liveness answers during loading."""
        started = time.perf_counter()

        async def load_all() -> None:
            await asyncio.gather(*(self._load(name, engine) for name, engine in self.engines.items()))
            logger.info("loading done in %.1fs: %s", time.perf_counter() - started, self.status)

        self._task = asyncio.create_task(load_all(), name="engine-pool-load")

    async def _load(self, name: str, engine: Engine) -> None:
        try:
            logger.info("loading %s", name)
            await engine.load()
            if self.settings.warmup and engine.available:
                await engine.warmup()
        except Exception as exc:
            self.status[name] = "failed"
            self.errors[name] = exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"
            logger.error("%s failed to load: %s", name, self.errors[name], exc_info=not isinstance(exc, APIError))
            return
        self.status[name] = "ready"
        logger.info("%s ready", name)

    @property
    def state(self) -> str:
        """ready only when every model is; failed if any failed; else loading."""
        values = set(self.status.values())
        if "failed" in values:
            return "failed"
        return "ready" if values <= {"ready"} else "loading"

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # never close an engine while its load is still running
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
        status = self.status[engine.model_id]
        if status == "loading":
            raise ServiceUnavailable(f"Model '{engine.model_id}' is still loading; retry shortly.", retry_after="5")
        if status == "failed":
            raise ServiceUnavailable(f"Model '{engine.model_id}' failed to load: {self.errors[engine.model_id]}")
        return engine

    def stats(self) -> dict[str, Any]:
        return {name: {"status": self.status[name], **engine.stats()} for name, engine in self.engines.items()}
