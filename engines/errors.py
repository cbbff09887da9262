"""The failures an engine can report, shared by ``engines/`` and ``server/``.

Engines say *what* went wrong (a bad voice, an overloaded queue, an upstream outage); they never
say how a transport shows it. ``server/errors.py`` maps each class here to an HTTP status and
Together's error body in one table, and the websocket layer maps the same objects to its events.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class TTSError(Exception):
    """A failure a client may see. ``code`` is a stable machine-readable name; ``param`` the field at fault."""

    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        #: Seconds (or an HTTP date from an upstream) after which a retry may succeed.
        self.retry_after = retry_after


class InvalidRequest(TTSError):
    """The request is malformed or names something this model does not support."""

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


class Unsupported(InvalidRequest):
    """A valid request for a feature this model does not have (e.g. word timestamps from Orpheus)."""

    code = "unsupported_feature"


class ModelNotFound(TTSError):
    code = "model_not_available"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class VoiceNotFound(TTSError):
    """A voice named by the path (``/v1/voices/{name}``) that the model does not have."""

    code = "voice_not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="name")


class Overloaded(TTSError):
    """Too many requests queued for a model: the client should back off and retry."""

    code = "server_overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message, retry_after=str(retry_after_s))


class ServiceUnavailable(TTSError):
    """The model exists but cannot serve now: still loading, shutting down, a dependency missing."""

    code = "service_unavailable"


class UpstreamError(TTSError):
    """A proxied provider failed or rejected the server's own credentials."""

    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"


class InternalError(TTSError):
    """Anything unexpected. The message is generic on purpose: tracebacks stay in the log."""

    code = "internal_error"


def as_tts_error(exc: BaseException) -> TTSError:
    """Return ``exc`` if it is a TTSError, else log it and hide it behind a generic internal error."""
    if isinstance(exc, TTSError):
        return exc
    logger.error("unhandled error", exc_info=exc)
    return InternalError("The server failed to process the request.")
