"""Cartesia's failures -> :mod:`engines.errors`, which the HTTP layer turns into Together's body.

The policy (issue 4): Cartesia's own 400/404/422 are the client's fault and keep Cartesia's message;
401/403 mean *our* key is wrong, which the client cannot fix, so they become a 502 that never quotes
the key or Cartesia's text; 429 stays 429 with its Retry-After; 5xx and connection failures are 502;
timeouts are 504.

Cartesia-Version 2026-03-01 answers errors with ``{"error_code", "title", "message", "request_id"}``;
older versions send plain text (``Title: Message``) or ``{"error": "..."}``. All of them are read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import httpx

from engines.errors import InvalidRequest, Overloaded, TTSError, UpstreamError, UpstreamTimeout

#: Upstream text is quoted to clients, but never at unbounded length.
MAX_MESSAGE_CHARS = 500

_CLIENT_FAULT_STATUSES = frozenset({400, 404, 422})
_AUTH_STATUSES = frozenset({401, 403})


def _redact(text: str, secret: str | None) -> str:
    # Cartesia has no reason to echo the key, but a proxy in between might: never pass it on.
    if secret:
        text = text.replace(secret, "***")
    return text[:MAX_MESSAGE_CHARS]


def message_from_payload(payload: Any) -> str | None:
    """The human text of a parsed JSON error body or SSE error event, whatever the API version."""
    if isinstance(payload, str):
        return payload.strip() or None
    if not isinstance(payload, Mapping):
        return None
    title = payload.get("title")
    message = payload.get("message")
    if isinstance(message, str) and message:
        return f"{title}: {message}" if isinstance(title, str) and title and title not in message else message
    for key in ("error", "detail"):
        nested = payload.get(key)
        if nested:
            found = message_from_payload(nested) if not isinstance(nested, list) else json.dumps(nested)
            if found:
                return found
    return title if isinstance(title, str) and title else None


def message_from_body(body: bytes) -> str | None:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        return message_from_payload(json.loads(text))
    except ValueError:
        return text  # legacy plain-text errors ("Title: Message")


def retry_after_seconds(value: str | None) -> int | None:
    """Retry-After as whole seconds, or None when absent or an HTTP date (kept verbatim instead)."""
    if not value:
        return None
    try:
        return max(0, math.ceil(float(value)))
    except ValueError:
        return None


def from_status(
    status: int,
    message: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    api_key: str | None = None,
) -> TTSError:
    """Map one upstream failure status (HTTP response or SSE error event) to our error."""
    detail = _redact(message or f"HTTP {status}", api_key)
    if status in _CLIENT_FAULT_STATUSES:
        return InvalidRequest(f"Cartesia rejected the request: {detail}")
    if status in _AUTH_STATUSES:
        return UpstreamError(
            f"Cartesia rejected this server's credentials (HTTP {status}). The operator must check CARTESIA_API_KEY.",
            code="upstream_auth_failed",
        )
    if status == 429:
        raw = (headers or {}).get("retry-after")
        seconds = retry_after_seconds(raw)
        err = Overloaded(f"Cartesia is rate limiting this server: {detail}", retry_after_s=seconds or 1)
        if raw and seconds is None:
            err.retry_after = raw  # an HTTP date: pass it on untouched
        return err
    return UpstreamError(f"Cartesia failed (HTTP {status}): {detail}")


def from_response(status: int, body: bytes, headers: Mapping[str, str], api_key: str | None) -> TTSError:
    return from_status(status, message_from_body(body), headers=headers, api_key=api_key)


def from_error_event(event: Mapping[str, Any], api_key: str | None) -> TTSError:
    """An SSE ``error`` event; its ``status_code`` says whose fault it is (500 when missing)."""
    status = event.get("status_code")
    if not isinstance(status, int) or status < 400:
        status = 500
    return from_status(status, message_from_payload(event), api_key=api_key)


def from_transport(exc: httpx.TransportError) -> TTSError:
    """Connection-level failures: timeouts are 504, everything else (refused, reset, TLS) is 502."""
    if isinstance(exc, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "connecting to",
            httpx.ReadTimeout: "waiting for data from",
            httpx.WriteTimeout: "sending to",
            httpx.PoolTimeout: "waiting for a free connection to",
        }.get(type(exc), "talking to")
        return UpstreamTimeout(f"Timed out {kind} Cartesia.")
    return UpstreamError(f"Could not reach Cartesia: {type(exc).__name__}.")
