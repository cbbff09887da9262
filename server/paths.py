"""Which routes a path means, for the layers that run before routing (auth, limits, logs, metrics).

The API answers at ``/v1/...``, without ``/v1`` and at ``/v1/v1/...`` (see ``server.app.VersionPrefix``);
:func:`canonical` maps every spelling to the ``/v1`` one, so these layers judge all three alike.
"""

from __future__ import annotations

#: First path segments of the versioned API, which also answer without their ``/v1`` prefix.
API_ROOTS = frozenset({"audio", "voices", "models"})
#: Open without a key (see needs_key): orchestrators' probes, Prometheus, the API's own description.
PUBLIC = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
PROBES = frozenset({"/health", "/ready", "/metrics"})
SPEECH = "/v1/audio/speech"
WEBSOCKET = "/v1/audio/speech/websocket"
#: Metric labels: every known route by its template, anything else as "other" (bounded cardinality).
ROUTES = frozenset(
    {
        SPEECH,
        SPEECH + "/openai",
        WEBSOCKET,
        "/v1/voices",
        "/v1/models",
        "/v1/usage",
        "/stats",
        *PUBLIC,
    }
)


def canonical(path: str) -> str:
    if path.startswith("/v1/v1/"):
        path = path[3:]
    elif path.split("/", 2)[1:2] and path.split("/", 2)[1] in API_ROOTS:
        path = "/v1" + path
    return path.rstrip("/") or "/"


def needs_key(path: str) -> bool:
    """Whether a (canonical) path is behind the API key: the API and ``/stats``; never probes, docs, pages."""
    return path.startswith("/v1/") or path == "/stats"


def route_label(path: str) -> str:
    if path in ROUTES:
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{id}"
    if path.startswith("/v1/voices/"):
        return "/v1/voices/{name}"
    return "/docs" if path.startswith("/docs/") else "other"


def is_api(path: str) -> bool:
    """Work the server does for clients (tracked in flight, refused while draining)."""
    return path.startswith("/v1/")
