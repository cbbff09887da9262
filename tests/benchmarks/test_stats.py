"""Percentile maths, the seeded Poisson arrival process, and per-level aggregates."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from benchmarks.bench.client import Record
from benchmarks.bench.stats import max_sustained, percentile, poisson_arrivals, summarize


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101])
@pytest.mark.parametrize("q", [0, 10, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear(n, q):
    values = [random.Random(n).uniform(0, 5) for _ in range(n)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edges():
    assert percentile([], 50) is None
    assert percentile([None, float("nan")], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5  # the mean of the middle two
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_poisson_arrivals_are_seeded_and_bounded():
    first = poisson_arrivals(2.0, count=50, seed=7)
    assert first == poisson_arrivals(2.0, count=50, seed=7)
    assert first != poisson_arrivals(2.0, count=50, seed=8)
    assert len(first) == 50 and first == sorted(first) and first[0] > 0
    timed = poisson_arrivals(2.0, duration=10.0, seed=7)
    assert timed == first[: len(timed)] and timed[-1] <= 10.0 < first[len(timed)]
    both = poisson_arrivals(2.0, count=5, duration=100.0, seed=7)
    assert both == first[:5]
    with pytest.raises(ValueError):
        poisson_arrivals(2.0, seed=1)
    with pytest.raises(ValueError):
        poisson_arrivals(0.0, count=3)


def test_poisson_gaps_are_exponential():
    rate = 4.0
    times = poisson_arrivals(rate, count=20000, seed=3)
    gaps = np.diff([0.0, *times])
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)  # exponential: CV = 1
    assert (gaps < 1 / rate).mean() == pytest.approx(1 - math.exp(-1), abs=0.015)
    counts = np.histogram(times, bins=np.arange(0, times[-1], 1.0))[0]  # per-second counts: Poisson(rate)
    assert counts.var() / counts.mean() == pytest.approx(1.0, rel=0.1)


def record(index, *, ttfa=0.2, ttlb=1.0, audio=2.0, status=200, error=None, realtime=True, warmup=False):
    r = Record("t", 2, "closed", index, 0, 10, warmup=warmup)
    r.ttfa_s, r.ttlb_s, r.audio_s, r.status, r.realtime = ttfa, ttlb, audio, status, realtime
    r.rtf = ttlb / audio if audio else None
    if error:
        r.fail(error, "x")
        r.realtime = False
    return r


def test_summarize_a_level():
    records = [record(i, ttfa=0.1 * (i + 1)) for i in range(8)]
    records += [record(8, status=429, error="http_429", audio=0.0), record(9, error="timeout", audio=0.0)]
    records.append(record(10, ttfa=99.0, warmup=True))  # excluded
    s = summarize(records, wall_s=4.0)
    assert (s.requests, s.ok, s.errors) == (10, 8, 2)
    assert s.error_rate == 0.2 and s.rate_429 == 0.1
    assert s.error_types == {"http_429": 1, "timeout": 1}
    assert s.ttfa["p50"] == pytest.approx(0.45)
    assert s.audio_s == 16.0 and s.audio_per_wall == 4.0
    assert s.mean_in_flight == pytest.approx(10 * 1.0 / 4.0)
    assert s.realtime_share == 0.8 and s.realtime_streams == pytest.approx(2.5 * 0.8)
    assert s.rtf["p50"] == 0.5


def test_max_sustained():
    assert max_sustained([(1, 1.0), (2, 0.96), (4, 0.5)]) == 2
    assert max_sustained([(1, 0.2)]) is None
