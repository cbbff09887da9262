"""Tenants: named keys with allowed models, limits and a priority (see keyfile.py for the file)."""

from server.tenants.limits import RateLimited, StreamSlot, TenantLimiter
from server.tenants.registry import TenantRegistry
from server.tenants.tenant import DEFAULT_TENANT, PRIORITIES, Limits, Tenant

__all__ = [
    "DEFAULT_TENANT",
    "PRIORITIES",
    "Limits",
    "RateLimited",
    "StreamSlot",
    "Tenant",
    "TenantLimiter",
    "TenantRegistry",
]
