"""Engine failures as HTTP: one table from error class to status and Together's error body.

Together's body is ``{"error": {"message", "type", "param", "code"}}``; the ``together`` SDKs
assert on that shape, so nothing may ever answer with FastAPI's ``{"detail": ...}``. The error
classes themselves live in :mod:`engines.errors` (engines raise them without knowing about HTTP);
the server adds only what is HTTP's own (a missing or wrong key) and maps everything here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from engines.errors import (
    InputTooLong,
    InternalError,
    InvalidRequest,
    InvalidVoice,
    ModelNotFound,
    Overloaded,
    ServiceUnavailable,
    TTSError,
    Unsupported,
    UnsupportedLanguage,
    UpstreamError,
    UpstreamTimeout,
    VoiceNotFound,
    as_tts_error,
)

logger = logging.getLogger(__name__)

APIError = TTSError  # the name the HTTP layer has always used

__all__ = [
    "APIError",
    "AuthenticationFailed",
    "DeadlineExceeded",
    "Forbidden",
    "HTTPError",
    "InputTooLong",
    "InternalError",
    "InvalidRequest",
    "InvalidVoice",
    "ModelNotFound",
    "Overloaded",
    "ServiceUnavailable",
    "TTSError",
    "Unsupported",
    "UnsupportedLanguage",
    "UpstreamError",
    "UpstreamTimeout",
    "VoiceNotFound",
    "as_api_error",
    "error_body",
    "error_headers",
    "http_status",
    "install_error_handlers",
    "send_asgi_error",
]


class AuthenticationFailed(TTSError):
    """A missing or wrong bearer key: the HTTP layer's own failure."""

    code = "invalid_api_key"


class Forbidden(TTSError):
    """The key is valid but its tenant may not do this (a model outside its list, an admin route)."""

    code = "forbidden"


class DeadlineExceeded(TTSError):
    """The request ran past its deadline (``TTS_REQUEST_TIMEOUT_S``)."""

    code = "deadline_exceeded"


class HTTPError(TTSError):
    """A status Starlette decided (404 for an unknown route, 405, 413...)."""

    def __init__(self, status: int, message: str, *, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.headers = headers or {}


# Most specific first: the first class an error is an instance of decides its status and type.
_HTTP: tuple[tuple[type[TTSError], int, str], ...] = (
    (AuthenticationFailed, 401, "invalid_request_error"),
    (Forbidden, 403, "permission_error"),
    (InvalidRequest, 400, "invalid_request_error"),
    (ModelNotFound, 404, "invalid_request_error"),
    (VoiceNotFound, 404, "invalid_request_error"),
    (Overloaded, 429, "rate_limit_exceeded"),
    (DeadlineExceeded, 504, "timeout_error"),
    (UpstreamTimeout, 504, "upstream_error"),
    (UpstreamError, 502, "upstream_error"),
    (ServiceUnavailable, 503, "service_unavailable"),
)


def _entry(err: TTSError) -> tuple[int, str]:
    if isinstance(err, HTTPError):
        return err.status, "invalid_request_error"
    for cls, status, kind in _HTTP:
        if isinstance(err, cls):
            return status, kind
    return 500, "server_error"


def http_status(err: TTSError) -> int:
    return _entry(err)[0]


def error_body(err: TTSError) -> dict[str, Any]:
    return {"error": {"message": err.message, "type": _entry(err)[1], "param": err.param, "code": err.code}}


def error_headers(err: TTSError) -> dict[str, str]:
    headers = dict(getattr(err, "headers", {}))
    if err.retry_after is not None:
        headers["Retry-After"] = err.retry_after
    if isinstance(err, AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    return headers


as_api_error = as_tts_error


def _validation_error(exc: Any) -> InvalidRequest:
    """Turn pydantic/FastAPI validation errors into one 400 naming the first offending field."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    msg = first.get("msg", "Invalid request")
    if first.get("type") == "json_invalid" or (first.get("loc") == ("body",) and param is None):
        return InvalidRequest("Request body must be a JSON object: " + msg)
    return InvalidRequest(f"Invalid value for '{param}': {msg}" if param else msg, param=param)


def error_response(err: TTSError):  # -> JSONResponse
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(err), status_code=http_status(err), headers=error_headers(err))


async def send_asgi_error(send: Any, err: TTSError) -> None:
    """Answer from an ASGI layer (before any route runs) with Together's error body."""
    body = json.dumps(error_body(err)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error_headers(err).items()]
    await send({"type": "http.response.start", "status": http_status(err), "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: Any) -> None:
    """Map every exception the app can raise to Together's error body."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def on_api_error(_request: Any, exc: TTSError):
        return error_response(exc)

    async def on_validation(_request: Any, exc: RequestValidationError):
        return error_response(_validation_error(exc))

    async def on_http(_request: Any, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request_error")
        return error_response(HTTPError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {})))

    async def on_unexpected(_request: Any, exc: Exception):
        return error_response(as_tts_error(exc))

    app.add_exception_handler(TTSError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
