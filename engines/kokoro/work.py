"""A step's unit of work (one request's next phoneme chunk) and how a step cuts its work into buckets.

Its own module so the batcher and the ``front`` schedule (schedule.py) both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engines.job import Job
from engines.kokoro.requests import KokoroItem, KokoroRequest

BUCKET_MIN_RATIO = 0.5  # an item joins a bucket when it is at least half the bucket's longest


@dataclass
class Work:
    job: Job[KokoroRequest]
    item: KokoroItem

    @property
    def request(self) -> KokoroRequest:
        return self.job.state


def buckets(work: Sequence[Work], max_tokens: int, key: Callable[[Work], int]) -> list[list[Work]]:
    """Cut ``work`` (any order) into groups of similar ``key`` whose padded size fits ``max_tokens``."""
    out: list[list[Work]] = []
    for entry in sorted(work, key=key, reverse=True):
        group = out[-1] if out else None
        longest = key(group[0]) if group else 0
        if group and key(entry) >= BUCKET_MIN_RATIO * longest and (len(group) + 1) * longest <= max_tokens:
            group.append(entry)
        else:
            out.append([entry])
    return out
