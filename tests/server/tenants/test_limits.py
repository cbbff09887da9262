"""TenantLimiter on a controlled clock: each limit at its threshold, Retry-After from its window, per tenant."""

from __future__ import annotations

import pytest

from server.errors import InvalidRequest
from server.tenants import Limits, RateLimited, Tenant, TenantLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tenant(name: str = "acme", **limits: int) -> Tenant:
    return Tenant(name=name, limits=Limits(**limits))


@pytest.fixture
def clock():
    return Clock()


def test_requests_per_minute_triggers_at_threshold_not_before(clock):
    limiter, t = TenantLimiter(clock), tenant(requests_per_minute=5)
    for _ in range(5):
        limiter.admit(t, 10).release()
        clock.now += 0.3
    with pytest.raises(RateLimited) as caught:
        limiter.admit(t, 10)
    err = caught.value
    assert err.code == "requests_per_minute_exceeded"
    # The first request's second (1000) leaves the window at 1060: now is 1001.5.
    assert err.retry_after == str(59)
    clock.now = 1059.9
    with pytest.raises(RateLimited):
        limiter.admit(t, 10)
    clock.now = 1060.0
    limiter.admit(t, 10)


def test_chars_per_minute_counts_characters(clock):
    limiter, t = TenantLimiter(clock), tenant(chars_per_minute=100)
    limiter.admit(t, 60)
    limiter.admit(t, 40)  # exactly at the limit: allowed
    with pytest.raises(RateLimited) as caught:
        limiter.admit(t, 1)
    assert caught.value.code == "chars_per_minute_exceeded" and caught.value.retry_after == "60"


def test_chars_per_day_window_is_a_day(clock):
    limiter, t = TenantLimiter(clock), tenant(chars_per_day=1000)
    limiter.admit(t, 900)
    clock.now += 3600
    with pytest.raises(RateLimited) as caught:
        limiter.admit(t, 200)
    assert caught.value.code == "chars_per_day_exceeded"
    assert 86400 - 3600 - 60 <= int(caught.value.retry_after) <= 86400 - 3600
    limiter.admit(t, 100)  # what still fits today is allowed


def test_refused_request_charges_nothing(clock):
    limiter, t = TenantLimiter(clock), tenant(requests_per_minute=10, chars_per_minute=50)
    limiter.admit(t, 50)
    for _ in range(20):
        with pytest.raises(RateLimited):
            limiter.admit(t, 5)
    clock.now += 60
    for _ in range(9):  # the refusals did not use up the request budget
        limiter.admit(t, 1)


def test_input_larger_than_a_limit_is_a_400(clock):
    limiter = TenantLimiter(clock)
    with pytest.raises(InvalidRequest) as caught:
        limiter.admit(tenant(chars_per_minute=10), 11)
    assert caught.value.code == "input_exceeds_tenant_limit"


def test_concurrent_streams(clock):
    limiter, t = TenantLimiter(clock), tenant(concurrent_streams=2)
    a, b = limiter.admit(t, 1), limiter.admit(t, 1)
    with pytest.raises(RateLimited) as caught:
        limiter.admit(t, 1)
    assert caught.value.code == "concurrent_streams_exceeded" and caught.value.retry_after == "1"
    a.release()
    a.release()  # idempotent: releases once
    c = limiter.admit(t, 1)
    with pytest.raises(RateLimited):
        limiter.admit(t, 1)
    b.release(), c.release()


def test_limits_are_per_tenant(clock):
    limiter = TenantLimiter(clock)
    busy, other = tenant("busy", requests_per_minute=1), tenant("other", requests_per_minute=1)
    limiter.admit(busy, 1)
    with pytest.raises(RateLimited):
        limiter.admit(busy, 1)
    limiter.admit(other, 1)


def test_tenant_without_limits_is_never_refused(clock):
    limiter, t = TenantLimiter(clock), tenant()
    for _ in range(1000):
        limiter.admit(t, 4096)
    assert not limiter._states  # nothing kept for it


def test_window_memory_is_bounded(clock):
    limiter, t = TenantLimiter(clock), tenant(requests_per_minute=10**9, chars_per_day=10**12)
    for _ in range(5000):
        limiter.admit(t, 1).release()
        clock.now += 0.5
    state = limiter._states["acme"]
    assert len(state.requests.buckets) <= 61 and len(state.chars_day.buckets) <= 1441
