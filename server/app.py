"""The FastAPI app factory. Everything the routes need lives on ``app.state``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from engines.base import Engine
from server.data_dir import default_data_dir
from server.engine_pool import EnginePool
from server.errors import install_error_handlers
from server.http_limits import RequestLimits
from server.metrics import Metrics
from server.openai.dialect import OpenAIDialect
from server.openapi import install_docs, install_openapi
from server.paths import API_ROOTS
from server.realtime.log_redaction import install_query_key_redaction
from server.request_log import RequestLog
from server.routes import health, openai_speech, playground, realtime, saved_voices, speech, usage_report, voices
from server.services.speech import SpeechService
from server.settings import Settings
from server.shutdown import Drain
from server.tenants import TenantLimiter, TenantRegistry
from server.tenants.usage import Usage, UsageStore

logger = logging.getLogger(__name__)

__all__ = ["API_ROOTS", "VersionPrefix", "create_app"]

DESCRIPTION = (
    "A self-hosted text-to-speech server that speaks Together AI's speech API (and OpenAI's). Every error is "
    '`{"error": {"message", "type", "param", "code"}}`; send `Authorization: Bearer <key>` when the server has keys.'
)


class VersionPrefix:
    """Serve the API with ``/v1``, without it, and with it twice, so any base URL works.

    The together SDKs v1 and v2 take ``base_url`` as given and append ``/audio/speech``; v3 appends
    ``/v1/audio/speech`` itself. So ``http://host:port``, ``http://host:port/v1`` and v3's
    ``/v1/v1/...`` all have to reach the same routes, with every SDK release, unmodified.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            raw = scope.get("raw_path") or path.encode()
            if path.startswith("/v1/v1/"):
                scope = dict(scope, path=path[3:], raw_path=raw[3:])
            elif path.split("/", 2)[1] in API_ROOTS:
                scope = dict(scope, path="/v1" + path, raw_path=b"/v1" + raw)
        await self.app(scope, receive, send)


def create_app(settings: Settings, engines: dict[str, Engine] | None = None) -> FastAPI:
    """Build the app. ``engines`` replaces the registry (API-layer tests pass a stand-in)."""
    pool = EnginePool(settings, engines)
    tenants = TenantRegistry(settings)  # a broken tenants file stops the server here
    # <data dir>/usage.sqlite3 (server/data_dir.py), created with the first record.
    store = UsageStore((settings.data_dir or default_data_dir()).expanduser() / "usage.sqlite3")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not tenants.configured:
            logger.warning(
                "no API keys configured (TTS_API_KEYS, TTS_KEYS_FILE): the API is open to anyone who can reach it"
            )
        tenants.install_sighup()
        watcher = asyncio.create_task(tenants.watch(), name="tenants-file-watch")
        pool.start()
        try:
            yield
        finally:
            watcher.cancel()
            tenants.remove_sighup()
            await pool.close()
            await asyncio.to_thread(store.close)  # every completed request's usage is on disk

    app = FastAPI(
        title="tts-server", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    metrics = Metrics(pool)
    pool.on_restart = lambda name: metrics.restarts.labels(name).inc()
    drain = Drain(settings.shutdown_grace_s)
    app.state.settings = settings
    app.state.engine_pool = pool
    app.state.metrics = metrics
    app.state.drain = drain
    app.state.tenants = tenants
    app.state.usage = usage = Usage(store, metrics.registry)
    app.state.limiter = TenantLimiter()
    app.state.speech_service = SpeechService(pool, settings, metrics=metrics, limiter=app.state.limiter)
    # Last added runs first: RequestLog (id, log line, metrics, drain) > RequestLimits (key before
    # body, body limits) > OpenAIDialect (sees every spelling of .../audio/speech) > VersionPrefix.
    app.add_middleware(VersionPrefix)
    app.add_middleware(OpenAIDialect, aliases=frozenset(a.lower() for a in settings.openai_model_aliases))
    app.add_middleware(RequestLimits, settings=settings)
    app.add_middleware(RequestLog, metrics=metrics, drain=drain, usage=usage)
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    install_query_key_redaction()  # the realtime socket's ?api_key= never reaches uvicorn's logs
    for module in (speech, openai_speech, realtime, voices, saved_voices, health, playground, usage_report):
        app.include_router(module.router)
    return app
