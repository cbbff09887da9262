"""Optional bearer-key authentication (keys come from settings and are never logged)."""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.requests import HTTPConnection

from server.errors import AuthenticationFailed


def require_api_key(request: Request) -> None:  # a WebSocket works too (same headers)
    keys = request.app.state.settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key")
    check_key(keys, token)


def check_key(keys, token: str) -> None:
    """Raise unless ``token`` is one of ``keys`` (the configured SecretStr keys)."""
    supplied = token.strip().encode()
    # Compare against every key, in constant time each, so timing reveals nothing about which matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(supplied, key.get_secret_value().encode())
    if not matched:
        raise AuthenticationFailed("Invalid API key.")


def require_api_key_or_query(connection: HTTPConnection) -> None:
    """Bearer header, or ``?api_key=`` for clients that cannot set headers (browsers' WebSocket)."""
    keys = connection.app.state.settings.api_keys
    query_key = connection.query_params.get("api_key")
    if keys and query_key and "authorization" not in connection.headers:
        check_key(keys, query_key)
        return
    require_api_key(connection)  # type: ignore[arg-type]


def require_admin(connection: HTTPConnection) -> None:
    """Changes that every client sees (saving and deleting voices): any valid key under plain ``TTS_API_KEYS``,
    open when no keys are configured, as the rest of the API. Tenants (issue 21) narrow this to admin keys."""
    require_api_key(connection)  # type: ignore[arg-type]
