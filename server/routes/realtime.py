"""GET /v1/audio/speech/websocket: checks happen before the upgrade, then the connection runs.

A wrong key (401), an unknown or unready model (404/503) or a bad option or voice (400) is
answered as a plain HTTP response with Together's error body instead of the 101, so a client
learns why before any websocket exists.

A key sent as ``?api_key=`` is taken out of the connection's query string before anything else
runs: uvicorn logs each handshake's path *with* its query string (``"WebSocket /v1/...?..."
[accepted]`` on ``uvicorn.error``), and the key must never reach a log.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from engines.registry import DEFAULT_MODEL
from server.auth import require_api_key_or_query
from server.errors import InvalidRequest, ServiceUnavailable, TTSError, as_tts_error, error_response
from server.realtime.connection import RealtimeConnection
from server.realtime.items import validate
from server.realtime.protocol import SessionOptions
from server.request_log import current
from server.services.speech import check_model

router = APIRouter()


def without_query_key(websocket: WebSocket) -> HTTPConnection:
    """Remove ``api_key`` from the scope's query string (what uvicorn logs); return a view that still has it."""
    scope = websocket.scope
    original = HTTPConnection(dict(scope))  # the auth check reads the key from this copy
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if any(name == "api_key" for name, _ in pairs):
        scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != "api_key"]).encode("latin-1")
    return original


def options_from_query(websocket: WebSocket) -> SessionOptions:
    settings = websocket.app.state.settings
    query = dict(websocket.query_params)
    query.pop("api_key", None)
    query.setdefault("model", settings.models[0] if settings.models else DEFAULT_MODEL)
    query.setdefault("max_partial_length", str(settings.realtime_max_partial_length))
    try:
        return SessionOptions.model_validate(query)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequest(f"Invalid value for '{param}': {first['msg']}", param=param) from None


@router.websocket("/v1/audio/speech/websocket")
async def speech_websocket(websocket: WebSocket) -> None:
    service = websocket.app.state.speech_service
    with_key = without_query_key(websocket)
    try:
        require_api_key_or_query(with_key)
        tenant = with_key.state.tenant
        websocket.state.tenant = tenant
        if websocket.app.state.drain.draining:
            raise ServiceUnavailable(
                "The server is shutting down; connect to another replica.",
                code="server_shutting_down",  # as HTTP requests get while draining (server/request_log.py)
                retry_after="1",
            )
        options = options_from_query(websocket)
        engine = service.pool.get_ready(options.model)
        check_model(tenant, engine.model_id)
        service.limiter.check(tenant)  # at a limit now: 429 before the upgrade (items are charged one by one)
        await validate(service, engine, options)
    except Exception as exc:
        err: TTSError = as_tts_error(exc)
        await websocket.send_denial_response(error_response(err))
        return
    if (trace := current()) is not None:
        trace.model, trace.voice = engine.model_id, options.voice
    open_sessions = websocket.app.state.metrics.websockets.labels(engine.model_id)
    open_sessions.inc()
    try:
        await websocket.accept()
        await RealtimeConnection(websocket, service, engine, options, tenant).run()
    finally:
        open_sessions.dec()
