"""HTTP hygiene below the routes: the key before the body, bounded bodies and headers, no slow clients.

Two layers, because each limit belongs where the bytes are:

* :class:`RequestLimits` (ASGI, outside every route and the OpenAI dialect switch) checks the
  bearer key from the headers alone, so a wrong key is a 401 however large or malformed the body;
  then it reads the body itself, refusing more than ``max_body_bytes`` (413, from
  ``Content-Length`` before reading anything) and a body that takes longer than ``body_timeout_s``
  (408), and a body whose JSON nests deeper than ``max_json_depth`` (400, before a recursive
  decoder meets it). The routes then read a replay of what it read.
* :class:`LimitedH11Protocol` (uvicorn's HTTP/1.1 protocol) bounds the request line and headers by
  ``max_header_bytes`` (h11's buffer limit: 431) and their arrival by ``header_timeout_s`` (408),
  and answers malformed HTTP in Together's error shape instead of uvicorn's ``text/plain``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from starlette.requests import HTTPConnection
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.auth import require_api_key
from server.errors import AuthenticationFailed, HTTPError, error_body, send_asgi_error
from server.json_depth import json_depth
from server.paths import canonical, needs_key

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestLimits:
    def __init__(self, app: Any, settings: Any) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # the websocket route checks its key itself (it also takes ?api_key=)
            await self.app(scope, receive, send)
            return
        if needs_key(canonical(scope["path"])):
            try:  # also names the tenant (scope state and the request's trace) for the route and the log
                require_api_key(HTTPConnection(scope))
            except AuthenticationFailed as err:
                await send_asgi_error(send, err)
                return
        if scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_asgi_error(send, _too_large(limit))
            return
        try:
            body, pending = await asyncio.wait_for(_read_body(receive, limit), self.settings.body_timeout_s)
        except _TooLarge:
            await send_asgi_error(send, _too_large(limit))
            return
        except asyncio.TimeoutError:
            err = HTTPError(
                408, f"The request body did not arrive within {self.settings.body_timeout_s:g} s.", code="timeout"
            )
            await send_asgi_error(send, err)
            return
        depth_limit = self.settings.max_json_depth
        # Before any JSON decoder recurses into it; an upload's bytes (a voicepack) are no JSON to measure.
        if pending is None and not _is_multipart(scope) and json_depth(body) > depth_limit:
            await send_asgi_error(send, too_deep(depth_limit))
            return
        await self.app(scope, _replay(body, pending, receive), send)


def _is_multipart(scope: dict) -> bool:
    content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
    return content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"


def too_deep(limit: int) -> HTTPError:
    return HTTPError(400, f"The JSON nests deeper than {limit} levels (TTS_MAX_JSON_DEPTH).", code="invalid_json")


class _TooLarge(Exception):
    pass


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"The request body is larger than {limit} bytes.", code="request_too_large")


async def _read_body(receive: Any, limit: int) -> tuple[bytes, dict | None]:
    """The whole body (or what came before a disconnect, with that message to hand on)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), None


def _replay(body: bytes, pending: dict | None, receive: Any) -> Any:
    queue: list[dict] = [{"type": "http.request", "body": body, "more_body": False}]
    if pending is not None:
        queue = [pending]

    async def replay() -> dict:
        if queue:
            return queue.pop(0)
        return await receive()  # later messages: http.disconnect when the client leaves

    return replay


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and error bodies in Together's shape.

    Pass it as ``uvicorn.Config(http=LimitedH11Protocol, h11_max_incomplete_event_size=...)``;
    the header timeout comes from :attr:`header_timeout_s` (set by :func:`uvicorn_config`).
    """

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._protocol_error: h11.RemoteProtocolError | None = None
        next_event = self.conn.next_event

        def watched_next_event() -> Any:
            try:
                event = next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error = exc  # uvicorn drops it; send_400_response reads its status hint
                raise
            if isinstance(event, h11.Request):
                self._disarm()  # the headers are in: from here the body limits apply
            return event

        self.conn.next_event = watched_next_event  # type: ignore[method-assign]

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:  # answered without reading the body (401, 413, 408): done
            self.transport.close()
            return
        self._arm()  # the next request on this connection gets the same deadline

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            self.transport.close()  # an idle keep-alive connection: nothing was asked, nothing to answer
            return
        self._send_error(408, f"The request headers did not arrive within {self.header_timeout_s:g} s.", "timeout")

    def send_400_response(self, msg: str) -> None:
        exc, self._protocol_error = self._protocol_error, None
        status = getattr(exc, "error_status_hint", 400) or 400
        if status == 431:
            self._send_error(431, "The request line and headers are too large.", "headers_too_large")
        else:
            detail = f": {exc}" if exc is not None and str(exc) else ""
            self._send_error(400, f"Malformed HTTP request{detail}.", "invalid_http")

    def _send_error(self, status: int, message: str, code: str) -> None:
        body = json.dumps(error_body(HTTPError(status, message, code=code))).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:  # a connection h11 already gave up on takes no more events: answer it raw
            self.transport.write(self.conn.send(h11.Response(status_code=status, headers=headers)) or b"")
            self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
            head = b"HTTP/1.1 %d %s\r\n" % (status, reason.get(status, b"Error"))
            head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
            self.transport.write(head + b"\r\n" + body)
        self.transport.close()


def uvicorn_config(app: Any, settings: Any, **kwargs: Any) -> Any:
    """The uvicorn configuration with every limit above (also used by tests' in-process servers)."""
    import uvicorn

    protocol = type("LimitedH11", (LimitedH11Protocol,), {"header_timeout_s": settings.header_timeout_s})
    return uvicorn.Config(
        app,
        http=protocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        ws_max_size=settings.max_body_bytes,  # a realtime event is bounded like a request body
        timeout_keep_alive=5,
        # Our shutdown (server/shutdown.py) ends streams first; this only bounds what is left after it.
        timeout_graceful_shutdown=5,
        access_log=False,  # server/request_log.py writes one JSON line per request instead
        **kwargs,
    )
