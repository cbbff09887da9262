"""The one error hierarchy of the server.

Every failure a client can see is a :class:`APIError`. Engines raise these too, so the HTTP
layer maps them to Together's error body in exactly one place (:func:`install_error_handlers`)
and the streaming encoder turns the same objects into a final SSE event.

Together's body is ``{"error": {"message", "type", "param", "code"}}``; the ``together`` SDKs
assert on that shape, so nothing may ever answer with FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class APIError(Exception):
    """An error with an HTTP status and Together's error body."""

    status_code: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(APIError):
    """The request is malformed or names something this model does not support (400)."""

    status_code = 400
    type = "invalid_request_error"
    code = "invalid_request"


class InvalidVoice(InvalidRequest):
    code = "invalid_voice"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="voice")


class UnsupportedLanguage(InvalidRequest):
    code = "unsupported_language"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="language")


class InputTooLong(InvalidRequest):
    code = "input_too_long"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="input")


class AuthenticationFailed(APIError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotFound(APIError):
    status_code = 404
    type = "invalid_request_error"
    code = "model_not_available"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class Overloaded(APIError):
    """Too many requests queued for a model: the client should back off and retry (429)."""

    status_code = 429
    type = "rate_limit_exceeded"
    code = "server_overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class UpstreamError(APIError):
    """A proxied provider failed or rejected the server's own credentials (502)."""

    status_code = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(APIError):
    status_code = 504
    type = "upstream_error"
    code = "upstream_timeout"


class ServiceUnavailable(APIError):
    """The model exists but cannot serve now: still loading, or a dependency is missing (503)."""

    status_code = 503
    type = "service_unavailable"
    code = "service_unavailable"


class InternalError(APIError):
    """Anything unexpected. The message is generic on purpose: tracebacks stay in the log."""

    status_code = 500
    type = "server_error"
    code = "internal_error"


def as_api_error(exc: BaseException) -> APIError:
    """Return ``exc`` if it is an APIError, else log it and hide it behind a generic 500."""
    if isinstance(exc, APIError):
        return exc
    logger.error("unhandled error", exc_info=exc)
    return InternalError("The server failed to process the request.")


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


def install_error_handlers(app: Any) -> None:
    """Map every exception the app can raise to Together's error body."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def respond(err: APIError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers)

    async def on_api_error(_request: Any, exc: APIError) -> JSONResponse:
        return respond(exc)

    async def on_validation(_request: Any, exc: RequestValidationError) -> JSONResponse:
        return respond(_validation_error(exc))

    async def on_http(_request: Any, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request_error")
        err = APIError(str(exc.detail), code=kind, headers=dict(exc.headers or {}))
        err.status_code, err.type = exc.status_code, "invalid_request_error"
        return respond(err)

    async def on_unexpected(_request: Any, exc: Exception) -> JSONResponse:
        return respond(as_api_error(exc))

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
