"""One JSON log line per request, its ``X-Request-ID``, metrics, and admission while draining.

:class:`RequestLog` is the outermost ASGI layer. For every HTTP request and websocket it creates a
:class:`RequestTrace` (reachable from anywhere in the request with :func:`current`), which the
speech service fills in (model, voice, characters, audio seconds) and this layer completes
(status, time to first audio byte, total time). When the response ends it writes one line of JSON
to the ``tts_server.requests`` logger and feeds the same numbers to the metrics.

Never logged at info level: the input text, the API key, any header but the request id.
Probes (``/health``, ``/ready``, ``/metrics``) log at debug level, so a kubelet does not flood it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from server.errors import ServiceUnavailable, send_asgi_error
from server.paths import PROBES, SPEECH, canonical, is_api, route_label

logger = logging.getLogger("tts_server.requests")
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # a client's own X-Request-ID is kept only if it is tame


@dataclass
class RequestTrace:
    request_id: str
    method: str
    path: str
    route: str
    started: float  # time.perf_counter()
    status: int | None = None
    model: str | None = None
    voice: str | None = None
    chars: int | None = None
    audio_seconds: float = 0.0
    first_audio_s: float | None = None
    error_code: str | None = None
    bytes_sent: int = 0
    tenant: Any = None  # server.tenants.Tenant, set by authentication; the log names it, never its key

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def record(self, total_s: float) -> dict[str, Any]:
        return {
            "event": "request",
            "time": round(time.time(), 3),
            "request_id": self.request_id,
            "tenant": None if self.tenant is None else self.tenant.name,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "model": self.model,
            "voice": self.voice,
            "chars": self.chars,
            "audio_s": round(self.audio_seconds, 3),
            "first_audio_s": None if self.first_audio_s is None else round(self.first_audio_s, 4),
            "total_s": round(total_s, 4),
            "bytes": self.bytes_sent,
            "error": self.error_code,
        }


_current: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar("tts_request", default=None)


def current() -> RequestTrace | None:
    """The trace of the request this code runs for (None outside a request, e.g. warmup)."""
    return _current.get()


class RequestLog:
    def __init__(self, app: Any, *, metrics: Any, drain: Any, usage: Any = None) -> None:
        self.app = app
        self.metrics = metrics
        self.drain = drain
        self.usage = usage  # server/tenants/usage.py: per-tenant accounting of speech requests

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = canonical(scope["path"])
        supplied = dict(scope.get("headers", ())).get(b"x-request-id", b"").decode("latin-1")
        trace = RequestTrace(
            request_id=supplied if _ID.match(supplied) else uuid.uuid4().hex,
            method=scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET",
            path=path,
            route=route_label(path),
            started=time.perf_counter(),
        )
        token = _current.set(trace)
        tracked = is_api(path)
        if tracked:
            self.drain.in_flight += 1
            self.metrics.in_flight.inc()
        try:
            if tracked and self.drain.draining and scope["type"] == "http":
                err = ServiceUnavailable(
                    "The server is shutting down; retry on another replica.",
                    code="server_shutting_down",
                    retry_after="1",
                )
                await send_asgi_error(self._send(trace, send), err)
                return
            await self.app(scope, receive, self._send(trace, send))
        except BaseException:
            trace.status = trace.status or 500
            raise
        finally:
            if tracked:
                self.drain.in_flight -= 1
                self.metrics.in_flight.dec()
            _current.reset(token)
            self._finish(trace)

    def _send(self, trace: RequestTrace, send: Any) -> Any:
        request_id = trace.request_id.encode()
        audio_route = trace.path.startswith(SPEECH)

        async def traced(message: dict) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                trace.status = message["status"]
                message = dict(message, headers=[*message.get("headers", ()), (b"x-request-id", request_id)])
            elif kind == "websocket.accept":
                trace.status = 101
                message = dict(message, headers=[*message.get("headers", ()), (b"x-request-id", request_id)])
            elif kind == "http.response.body":
                body = message.get("body", b"")
                if body and audio_route and trace.status == 200 and trace.first_audio_s is None:
                    trace.first_audio_s = trace.elapsed()
                trace.bytes_sent += len(body)
            await send(message)

        return traced

    def _finish(self, trace: RequestTrace) -> None:
        total = trace.elapsed()
        try:
            self.metrics.observe(trace, total)
            if self.usage is not None:
                self.usage.record_trace(trace)
        except Exception:  # metrics must never break a response
            logger.exception("recording metrics failed")
        level = logging.DEBUG if trace.path in PROBES else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, json.dumps(trace.record(total), separators=(",", ":")))


class JsonLineFormatter(logging.Formatter):
    """The request logger's lines are JSON already: print them as they are, one per line."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def configure_request_logging() -> None:
    """Send request lines to stderr as bare JSON (the CLI calls this; tests keep caplog's handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter())
    logger.addHandler(handler)
    logger.propagate = False
