"""The engines this process serves, keyed by canonical model name, their readiness, and their supervision.

Readiness tells the truth: a supervisor polls every ready engine's :meth:`Engine.health`. A model
whose worker died or hung is marked ``restarting`` at once (``/ready`` 503, its requests 503; its
worker has already failed the requests it held), then closed and loaded again, up to
``engine_max_restarts`` times over the process's life with a growing pause between tries; after
that it stays ``failed``. Each step is logged. A restart runs as a task of its own (a model's
reload takes minutes), so the supervisor goes on checking the other models meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from engines import registry
from engines.base import Engine
from server.data_dir import voice_store
from server.errors import APIError, ModelNotFound, ServiceUnavailable
from server.settings import Settings

logger = logging.getLogger(__name__)


class EnginePool:
    def __init__(self, settings: Settings, engines: dict[str, Engine] | None = None) -> None:
        self.settings = settings
        if engines is None:
            engines = {}
            for name in settings.models:
                engine = registry.create_engine(name, settings.section(name))
                engines[engine.model_id] = engine
        self.engines = engines
        for model_id, engine in engines.items():  # engines never choose paths: the server owns the data dir
            engine.voice_store = voice_store(getattr(settings, "data_dir", None), model_id)
        # Per model, so one model still loading (or failed) never holds back the others.
        # loading | ready | restarting | failed
        self.status: dict[str, str] = {name: "loading" for name in engines}
        self.errors: dict[str, str] = {}
        self.restarts: dict[str, int] = dict.fromkeys(engines, 0)
        self.on_restart: Any = None  # called with the model name at each restart (metrics)
        self._task: asyncio.Task[Any] | None = None
        self._supervisor: asyncio.Task[Any] | None = None
        self._restarting: dict[str, asyncio.Task[Any]] = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load and warm every engine in the background, so liveness answers during loading."""
        started = time.perf_counter()

        async def load_all() -> None:
            await asyncio.gather(*(self._load(name, engine) for name, engine in self.engines.items()))
            logger.info("loading done in %.1fs: %s", time.perf_counter() - started, self.status)

        self._task = asyncio.create_task(load_all(), name="engine-pool-load")
        self._supervisor = asyncio.create_task(self._supervise(), name="engine-pool-supervisor")

    # -- supervision ----------------------------------------------------------------------------
    @property
    def poll_s(self) -> float:
        watchdog = getattr(self.settings, "watchdog_s", 120.0)
        return max(0.05, min(1.0, watchdog / 4))

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            for name, engine in self.engines.items():
                if self.status[name] != "ready":
                    continue
                try:
                    reason = engine.health()
                except Exception as exc:
                    reason = f"health check failed: {type(exc).__name__}"
                if reason:
                    self.status[name] = "restarting"  # at once: /ready and new requests see it now
                    self.errors[name] = reason
                    logger.error("%s failed: %s", name, reason)
                    self._restarting[name] = asyncio.create_task(
                        self._restart(name, engine, reason), name=f"engine-pool-restart-{name}"
                    )

    async def _restart(self, name: str, engine: Engine, reason: str) -> None:
        try:
            await self._reload(name, engine, reason)
        finally:
            self._restarting.pop(name, None)

    async def _reload(self, name: str, engine: Engine, reason: str) -> None:
        while self.restarts[name] < self.settings.engine_max_restarts:
            self.restarts[name] += 1
            attempt = self.restarts[name]
            if self.on_restart is not None:
                self.on_restart(name)
            logger.warning("%s: restart %d of %d", name, attempt, self.settings.engine_max_restarts)
            with contextlib.suppress(Exception):
                await engine.close()
            await asyncio.sleep(min(30.0, 0.5 * 2 ** (attempt - 1)))
            try:
                await engine.load()
                if self.settings.warmup and engine.available:
                    await engine.warmup()
            except Exception as exc:
                self.errors[name] = f"restart {attempt} failed: {type(exc).__name__}: {exc}"
                logger.error("%s: restart %d failed", name, attempt, exc_info=True)
                continue
            self.status[name] = "ready"
            self.errors.pop(name, None)
            logger.info("%s restarted (restart %d); ready", name, attempt)
            return
        self.status[name] = "failed"
        self.errors[name] = f"{reason} (no restarts left: TTS_ENGINE_MAX_RESTARTS={self.settings.engine_max_restarts})"
        logger.error("%s: %s", name, self.errors[name])

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
        if values & {"failed", "restarting"}:
            return "failed"
        return "ready" if values <= {"ready"} else "loading"

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        for task in list(self._restarting.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # never close an engine while its reload is still running
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # never close an engine while its load is still running
        await asyncio.gather(*(e.close() for e in self.engines.values()), return_exceptions=True)

    # -- lookup -------------------------------------------------------------------------------
    def lookup(self, name: str) -> Engine:
        """The engine serving ``name`` (any alias), even if it is still loading."""
        loaded = ", ".join(self.engines) or "none"
        try:
            spec = registry.resolve(name)
        except ModelNotFound:
            raise ModelNotFound(f"Model '{name}' is not served here (loaded: {loaded}).") from None
        engine = self.engines.get(spec.model_id)
        if engine is None:
            raise ModelNotFound(f"Model '{name}' is not loaded on this server (loaded: {loaded}).")
        return engine

    def get_ready(self, name: str) -> Engine:
        engine = self.lookup(name)
        status = self.status[engine.model_id]
        if status == "loading":
            raise ServiceUnavailable(f"Model '{engine.model_id}' is still loading; retry shortly.", retry_after="5")
        if status == "restarting":
            raise ServiceUnavailable(
                f"Model '{engine.model_id}' failed ({self.errors.get(engine.model_id)}) and is restarting; "
                "retry shortly.",
                retry_after="5",
            )
        if status == "failed":
            raise ServiceUnavailable(f"Model '{engine.model_id}' failed: {self.errors[engine.model_id]}")
        return engine

    def stats(self) -> dict[str, Any]:
        return {
            name: {
                "status": self.status[name],
                "restarts": self.restarts[name],
                **engine.stats(),
                "settings": self._public_settings(name),
            }
            for name, engine in self.engines.items()
        }

    def _public_settings(self, name: str) -> dict[str, Any]:
        """The model's effective section, secrets masked; {} for an engine the registry does not list."""
        try:
            return registry.public_settings(self.settings.section(name))
        except ModelNotFound:  # injected by an embedding app
            return {}
