"""Percentiles, the Poisson arrival process, and the per-level aggregates of a run.

Percentiles interpolate linearly between order statistics (numpy's default, Hyndman-Fan type 7),
so p50 of an even count is the mean of the middle two. Latency percentiles are over successful
requests only; error and 429 rates are over every measured request. Warm-up requests are excluded.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PERCENTILES = (50, 90, 99)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; None for no values."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def poisson_arrivals(
    rate: float, *, count: int | None = None, duration: float | None = None, seed: int = 0
) -> list[float]:
    """Arrival times (s from 0) of a Poisson process of ``rate`` per second: exponential gaps, seeded.

    Stops after ``count`` arrivals or at ``duration`` seconds, whichever comes first (one is required).
    """
    if rate <= 0:
        raise ValueError("the arrival rate must be positive")
    if count is None and duration is None:
        raise ValueError("bound the arrivals by a count, a duration, or both")
    rng = random.Random(seed)
    times: list[float] = []
    t = 0.0
    while count is None or len(times) < count:
        t += rng.expovariate(rate)
        if duration is not None and t > duration:
            break
        times.append(t)
    return times


@dataclass
class LevelSummary:
    target: str
    mode: str
    level: float
    requests: int
    ok: int
    errors: int
    error_rate: float
    rate_429: float
    wall_s: float
    audio_s: float
    audio_per_wall: float  # audio-seconds produced per wall-second
    requests_per_s: float
    realtime_share: float  # share of requests with first audio in bound and no playback stall
    realtime_streams: float  # streams sustained in real time (see summarize)
    mean_in_flight: float
    ttfa: dict[str, float | None]
    ttlb: dict[str, float | None]
    rtf: dict[str, float | None]
    ttfb_p50: float | None
    audio_s_per_request: float | None
    error_types: dict[str, int]

    def public(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in PERCENTILES}


def summarize(records: Sequence[Any], wall_s: float) -> LevelSummary:
    """Aggregate one level's measured records (objects with the fields of ``client.Record``).

    ``mean_in_flight`` is the time-average number of requests open during the level (Little's
    law: total request time / wall time); ``realtime_streams`` is that times the real-time
    share, the number of concurrent listeners whose audio started in time and never stalled.
    """
    measured = [r for r in records if not r.warmup]
    if not measured:
        raise ValueError("no measured requests in this level")
    ok = [r for r in measured if r.ok]
    n = len(measured)
    audio = sum(r.audio_s for r in ok)
    busy = sum(r.ttlb_s or 0.0 for r in measured)
    in_flight = busy / wall_s if wall_s > 0 else 0.0
    realtime_share = sum(r.realtime for r in measured) / n
    error_types: dict[str, int] = {}
    for r in measured:
        if r.error_type:
            error_types[r.error_type] = error_types.get(r.error_type, 0) + 1
    first = measured[0]
    return LevelSummary(
        target=first.target,
        mode=first.mode,
        level=first.level,
        requests=n,
        ok=len(ok),
        errors=n - len(ok),
        error_rate=(n - len(ok)) / n,
        rate_429=sum(r.status == 429 for r in measured) / n,
        wall_s=wall_s,
        audio_s=audio,
        audio_per_wall=audio / wall_s if wall_s > 0 else 0.0,
        requests_per_s=len(ok) / wall_s if wall_s > 0 else 0.0,
        realtime_share=realtime_share,
        realtime_streams=in_flight * realtime_share,
        mean_in_flight=in_flight,
        ttfa=_pcts([r.ttfa_s for r in ok]),
        ttlb=_pcts([r.ttlb_s for r in ok]),
        rtf=_pcts([r.rtf for r in ok]),
        ttfb_p50=percentile([r.ttfb_s for r in ok], 50),
        audio_s_per_request=audio / len(ok) if ok else None,
        error_types=error_types,
    )


def max_sustained(points: Iterable[tuple[float, float]], share: float = 0.95) -> float | None:
    """The highest level at which at least ``share`` of requests were real time (None: none was).

    ``points`` are ``(level, realtime share)`` pairs, one per level.
    """
    good = [level for level, realtime_share in points if realtime_share >= share]
    return max(good) if good else None
