"""Bearer-key authentication: which tenant calls (keys come from settings or the tenants file, never logged).

Every authenticated connection carries its tenant as ``connection.state.tenant`` (and on the
request's trace, whose log line names it): a :class:`server.tenants.Tenant`, or the unlimited
``default`` tenant when the server has no keys or the key is a plain ``TTS_API_KEYS`` one.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.errors import AuthenticationFailed, Forbidden
from server.request_log import current
from server.tenants import DEFAULT_TENANT, Tenant


def require_api_key(request: HTTPConnection) -> None:  # a Request or a WebSocket (same headers)
    registry = request.app.state.tenants
    if not registry.configured:
        attach(request, DEFAULT_TENANT)
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key")
    attach(request, registry.authenticate(token))


def attach(connection: HTTPConnection, tenant: Tenant) -> None:
    connection.state.tenant = tenant
    trace = current()
    if trace is not None:
        trace.tenant = tenant


def require_api_key_or_query(connection: HTTPConnection) -> None:
    """Bearer header, or ``?api_key=`` for clients that cannot set headers (browsers' WebSocket)."""
    registry = connection.app.state.tenants
    query_key = connection.query_params.get("api_key")
    if registry.configured and query_key and "authorization" not in connection.headers:
        attach(connection, registry.authenticate(query_key))
        return
    require_api_key(connection)


def tenant_of(connection: HTTPConnection) -> Tenant:
    """The connection's tenant, authenticating it first if no layer has yet."""
    tenant = getattr(connection.state, "tenant", None)
    if tenant is None:
        require_api_key(connection)
        tenant = connection.state.tenant
    return tenant


def require_admin(connection: HTTPConnection) -> None:
    """Admin routes: anyone without keys, any plain ``TTS_API_KEYS`` key without a tenants file, and
    otherwise only a tenant flagged ``admin`` (else 403)."""
    tenant = tenant_of(connection)
    if not tenant.admin:
        raise Forbidden(f"Tenant '{tenant.name}' is not an admin.", code="admin_required")
