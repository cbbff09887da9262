"""Optional bearer-key authentication (keys come from settings and are never logged)."""

from __future__ import annotations

import hmac

from fastapi import Request

from server.errors import AuthenticationFailed


def require_api_key(request: Request) -> None:
    keys = request.app.state.settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key")
    supplied = token.strip().encode()
    # Compare against every key, in constant time each, so timing reveals nothing about which matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(supplied, key.get_secret_value().encode())
    if not matched:
        raise AuthenticationFailed("Invalid API key.")
