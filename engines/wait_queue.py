"""The jobs a :class:`engines.worker.BatchWorker` holds that are not in its batch, best class first.

Each job has a plain int priority (lower first; the server maps its tenants' classes to it, engines
only compare numbers). Every ``aging_steps`` worker steps a job spends here raise it by one class,
so lower classes are never starved: a ``batch`` job (1) ranks with fresh ``interactive`` ones (-1)
after ``2 * aging_steps`` steps. Ties go to the job submitted first. The worker's lock guards it.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from typing import Any

from engines.job import Job

AGING_STEPS = 100  # steps queued that raise a job's priority by one class


class WaitQueue:
    def __init__(self, aging_steps: int = AGING_STEPS) -> None:
        self.aging_steps = max(1, aging_steps)
        self.steps = 0  # the worker's steps so far: the clock aging runs on
        self._jobs: collections.deque[Job[Any]] = collections.deque()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job[Any]]:
        return iter(self._jobs)

    def push(self, job: Job[Any]) -> None:
        """Queue ``job`` (new, or parked: it keeps the aging credit it had)."""
        job.queued_at_step = self.steps
        self._jobs.append(job)

    def take(self, job: Job[Any]) -> None:
        """``job`` joins the batch: its time here counts toward its aging credit."""
        self._jobs.remove(job)
        job.waited_steps += self.steps - (job.queued_at_step or 0)
        job.queued_at_step = None

    def remove(self, job: Job[Any]) -> None:
        """``job`` leaves for good (cancelled, finished elsewhere)."""
        self._jobs.remove(job)

    def rank(self, job: Job[Any]) -> int:
        """The job's priority less its aging credit (its steps queued, now included if it is queued)."""
        waited = job.waited_steps
        if job.queued_at_step is not None:
            waited += self.steps - job.queued_at_step
        return job.priority - waited // self.aging_steps

    def best(self) -> Job[Any]:
        return min(self._jobs, key=lambda j: (self.rank(j), j.seq))

    def victim(self, best: Job[Any], active: Iterable[Job[Any]]) -> Job[Any] | None:
        """The active job ``best`` may park: of a worse class by its own priority (work of one class never
        preempts itself), and not aged up to ``best``'s rank. The worst and newest such job."""
        rank = self.rank(best)
        worse = [j for j in active if j.priority > best.priority and self.rank(j) > rank]
        return max(worse, key=lambda j: (self.rank(j), j.seq)) if worse else None
