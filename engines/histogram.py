"""A small thread-safe histogram engines fill in from their own threads and report in ``stats()``.

Engines must not import the server (or Prometheus): they count in this neutral shape and the
server turns it into whatever it exports (server/metrics.py). Buckets are upper bounds, as in
Prometheus: an observation ``v`` lands in the first bucket with ``v <= le``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from typing import Any

#: Seconds: queue waits, upstream latencies (5 ms to a minute).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Sizes: requests per batch, windows per codec call.
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float, times: int = 1) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self._counts[index] += times
            self._sum += value * times

    def snapshot(self) -> dict[str, Any]:
        """``{"buckets": [[le, cumulative count], ...], "sum", "count"}`` (the +Inf bucket is ``count``)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for le, count in zip(self.buckets, counts):
            running += count
            cumulative.append([le, running])
        return {"buckets": cumulative, "sum": round(total, 6), "count": running + counts[-1]}


def from_counts(counts: dict[int, int], buckets: Iterable[float] = SIZE_BUCKETS) -> dict[str, Any]:
    """A histogram snapshot from exact ``{size: times}`` counts (the batch-size counters engines keep)."""
    histogram = Histogram(buckets)
    for size, times in counts.items():
        histogram.observe(size, times)
    return histogram.snapshot()
