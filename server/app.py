"""The FastAPI app factory. Everything the routes need lives on ``app.state``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from engines.base import Engine
from server.engine_pool import EnginePool
from server.errors import install_error_handlers
from server.routes import health, speech, voices
from server.services.speech import SpeechService
from server.settings import Settings

logger = logging.getLogger(__name__)


class DoubledVersionPrefix:
    """Serve ``/v1/v1/...`` as ``/v1/...``.

    The together SDK v1 wants ``base_url=http://host:port/v1``; newer releases add ``/v1`` to every
    path themselves. Accepting both lets one base URL work with every SDK release, unmodified.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith("/v1/v1/"):
            raw_path = scope.get("raw_path")
            scope = dict(scope, path=scope["path"][3:], raw_path=raw_path[3:] if raw_path else None)
        await self.app(scope, receive, send)


def create_app(settings: Settings, engines: dict[str, Engine] | None = None) -> FastAPI:
    """Build the app. ``engines`` replaces the registry (API-layer tests pass a stand-in)."""
    pool = EnginePool(settings, engines)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.api_keys:
            logger.warning("no API keys configured (TTS_API_KEYS): the API is open to anyone who can reach it")
        pool.start()
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="tts-server", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine_pool = pool
    app.state.speech_service = SpeechService(pool, settings)
    app.add_middleware(DoubledVersionPrefix)
    install_error_handlers(app)
    for module in (speech, voices, health):
        app.include_router(module.router)
    return app
