"""A tenant: a name, its key hashes, the models it may use, its limits and its scheduling priority."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Priority classes as the engines take them: a plain int, lower is served first (vLLM's convention),
#: so a request without a tenant (0, ``standard``) needs no mapping anywhere.
PRIORITIES = {"interactive": -1, "standard": 0, "batch": 1}


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    chars_per_minute: int | None = None
    chars_per_day: int | None = None
    concurrent_streams: int | None = None


@dataclass(frozen=True)
class Tenant:
    name: str
    key_hashes: tuple[str, ...] = ()
    models: frozenset[str] | None = None  # None: every model
    priority: int = 0
    priority_name: str = "standard"
    admin: bool = False
    limits: Limits = field(default_factory=Limits)

    def may_use(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models


#: Who calls when the server has no tenants file: open access, or a plain TTS_API_KEYS key. No limits.
DEFAULT_TENANT = Tenant(name="default", admin=True)
