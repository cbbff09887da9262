"""Per-tenant limits: requests and characters in sliding windows, and streams open at once.

Each window keeps its amounts in buckets (one second for the minute windows, one minute for the
day), so memory per tenant is bounded whatever the traffic, and a request is refused only when it
would take the window past its limit: the limit-th request of a minute passes, the next does not.
``Retry-After`` is when enough of the window's oldest buckets expire for that request to fit
(rounded up to whole seconds); for concurrent streams, which have no window, it is 1 second.

A *stream* is any speech request in progress (HTTP, streamed or not) and every realtime websocket
item from its first text to its last audio. Counters live on the event loop only (no locks).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.errors import InvalidRequest, Overloaded
from server.tenants.tenant import Tenant

MINUTE, DAY = 60.0, 86400.0


class RateLimited(Overloaded):
    """429 naming the limit in ``code`` (``requests_per_minute_exceeded``...), with Retry-After."""

    def __init__(self, limit: str, value: int, retry_after_s: float, tenant: str) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        unit = "streams at once" if limit == "concurrent_streams" else limit.replace("_", " ")
        super().__init__(f"Tenant '{tenant}' reached its limit of {value} {unit}; retry in {seconds} s.")
        self.code = f"{limit}_exceeded"
        self.retry_after = str(seconds)
        self.limit = limit


class Window:
    """Amounts added over the last ``window_s`` seconds, in buckets of ``bucket_s``."""

    def __init__(self, window_s: float, bucket_s: float) -> None:
        self.window_s, self.bucket_s = window_s, bucket_s
        self.buckets: collections.deque[list[float]] = collections.deque()  # [start, amount]
        self.total = 0

    def _expire(self, now: float) -> None:
        while self.buckets and self.buckets[0][0] + self.window_s <= now:
            self.total -= int(self.buckets.popleft()[1])

    def wait(self, amount: int, limit: int, now: float) -> float:
        """Seconds until ``amount`` more fits under ``limit`` (0: it fits now)."""
        self._expire(now)
        excess = self.total + amount - limit
        if excess <= 0:
            return 0.0
        for start, held in self.buckets:
            excess -= int(held)
            if excess <= 0:
                return start + self.window_s - now
        return self.window_s

    def add(self, amount: int, now: float) -> None:
        start = now - now % self.bucket_s
        if self.buckets and self.buckets[-1][0] == start:
            self.buckets[-1][1] += amount
        else:
            self.buckets.append([start, amount])
        self.total += amount


@dataclass
class _State:
    requests: Window = field(default_factory=lambda: Window(MINUTE, 1.0))
    chars_minute: Window = field(default_factory=lambda: Window(MINUTE, 1.0))
    chars_day: Window = field(default_factory=lambda: Window(DAY, 60.0))
    streams: int = 0


class StreamSlot:
    """One stream held against a tenant's ``concurrent_streams``; :meth:`release` is idempotent."""

    def __init__(self, state: _State | None) -> None:
        self._state = state
        if state is not None:
            state.streams += 1

    def release(self) -> None:
        if self._state is not None:
            self._state.streams -= 1
            self._state = None


class TenantLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._states: dict[str, _State] = {}  # one per tenant name that has limits (bounded by the file)

    def _state(self, tenant: Tenant) -> _State | None:
        limits = tenant.limits
        if not any(v is not None for v in vars(limits).values()):
            return None
        return self._states.setdefault(tenant.name, _State())

    def _check(self, tenant: Tenant, state: _State, requests: int, chars: int, stream: bool) -> None:
        limits, now = tenant.limits, self.clock()
        for name, window, amount in (
            ("requests_per_minute", state.requests, requests),
            ("chars_per_minute", state.chars_minute, chars),
            ("chars_per_day", state.chars_day, chars),
        ):
            limit = getattr(limits, name)
            if limit is None or amount == 0:
                continue
            if amount > limit:  # can never pass: say so rather than send the client into retries
                raise InvalidRequest(
                    f"This input is {amount} characters; tenant '{tenant.name}' may send at most {limit} "
                    f"({name.replace('_', ' ')}).",
                    param="input",
                    code="input_exceeds_tenant_limit",
                )
            wait = window.wait(amount, limit, now)
            if wait > 0:
                raise RateLimited(name, limit, wait, tenant.name)
        if stream and limits.concurrent_streams is not None and state.streams >= limits.concurrent_streams:
            raise RateLimited("concurrent_streams", limits.concurrent_streams, 1.0, tenant.name)

    def admit(self, tenant: Tenant, chars: int, *, requests: int = 1) -> StreamSlot:
        """Charge a request of ``chars`` characters and open its stream, or raise (nothing charged)."""
        state = self._state(tenant)
        if state is None:
            return StreamSlot(None)
        self._check(tenant, state, requests, chars, stream=True)
        now = self.clock()
        state.requests.add(requests, now)
        if chars:
            state.chars_minute.add(chars, now)
            state.chars_day.add(chars, now)
        return StreamSlot(state)

    def charge_chars(self, tenant: Tenant, chars: int) -> None:
        """More text for a stream already open (a websocket append), or raise (nothing charged)."""
        state = self._state(tenant)
        if state is None or not chars:
            return
        self._check(tenant, state, 0, chars, stream=False)
        now = self.clock()
        state.chars_minute.add(chars, now)
        state.chars_day.add(chars, now)

    def check(self, tenant: Tenant) -> None:
        """Raise if one more request (of one character) would be refused now; charges nothing."""
        state = self._state(tenant)
        if state is not None:
            self._check(tenant, state, 1, 1, stream=True)
