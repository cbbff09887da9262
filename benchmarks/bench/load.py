"""Drive one target at one level: closed-loop clients or open-loop Poisson arrivals, bounded in count and time.

* closed loop, concurrency C: C clients, each sending its next request when the last one ends;
* open loop, rate R: requests arrive at Poisson times (seeded) whatever the server is doing;
  arrivals beyond ``max_in_flight`` open requests are recorded as ``client_overflow`` errors.

A level stops after ``requests`` requests or ``duration`` seconds, whichever comes first; requests
in flight then still finish, each bounded by the per-request timeout. Warm-up requests run first
at concurrency 1 and are flagged, never aggregated.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from benchmarks.bench.client import Record, finish_record, run_http, run_websocket
from benchmarks.bench.stats import percentile, poisson_arrivals
from benchmarks.bench.targets import Target
from benchmarks.bench.texts import TextSet


@dataclass(frozen=True)
class LevelPlan:
    mode: str  # closed | open
    level: float  # concurrency or arrivals per second
    requests: int | None
    duration: float | None
    timeout_s: float = 120.0
    first_audio_bound_s: float = 1.0
    seed: int = 0
    max_in_flight: int = 256


@dataclass
class LevelResult:
    records: list[Record]
    wall_s: float


class Progress:
    """A live bar (tqdm) with ok/error counts and the running median first audio."""

    def __init__(self, label: str, total: int | None, enabled: bool) -> None:
        self._bar = None
        self._ttfa: list[float] = []
        self._ok = self._err = 0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="req", file=sys.stderr, leave=True, dynamic_ncols=True)

    def update(self, record: Record) -> None:
        if record.ok:
            self._ok += 1
        else:
            self._err += 1
        if record.ttfb_s is not None:
            self._ttfa.append(record.ttfb_s)
        if self._bar is not None:
            median = percentile(self._ttfa[-200:], 50)
            self._bar.update(1)
            self._bar.set_postfix(ok=self._ok, err=self._err, ttfb_p50=f"{median:.2f}s" if median else "-")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Driver:
    """Sends a target's requests through one pooled HTTP client (connections kept across levels)."""

    def __init__(self, target: Target, texts: TextSet, client: httpx.AsyncClient, progress: bool) -> None:
        self.target, self.texts, self.client, self.progress = target, texts, client, progress

    async def one(self, plan: LevelPlan, index: int, t0: float, warmup: bool = False) -> Record:
        text_id, text = self.texts.pick(index)
        record = Record(self.target.name, plan.level, plan.mode, index, text_id, len(text), warmup=warmup)
        record.start_s = time.perf_counter() - t0
        if self.target.stream == "ws":
            await run_websocket(self.target, text, record, plan.timeout_s)
        else:
            await run_http(self.client, self.target, text, record, plan.timeout_s)
        return record

    async def warmup(self, count: int, plan: LevelPlan) -> list[Record]:
        t0 = time.perf_counter()
        return [await self.one(plan, i, t0, warmup=True) for i in range(count)]

    async def level(self, plan: LevelPlan, label: str) -> LevelResult:
        bar = Progress(label, plan.requests, self.progress)
        try:
            if plan.mode == "closed":
                records, wall = await self._closed(plan, bar.update)
            else:
                records, wall = await self._open(plan, bar.update)
        finally:
            bar.close()
        for record in records:  # decoding happens here, outside the timed section
            finish_record(record, self.target, plan.first_audio_bound_s)
        return LevelResult(sorted(records, key=lambda r: r.index), wall)

    async def _closed(self, plan: LevelPlan, done: Callable[[Record], None]) -> tuple[list[Record], float]:
        counter = itertools.count()
        records: list[Record] = []
        t0 = time.perf_counter()

        async def client() -> None:
            while True:
                if plan.duration is not None and time.perf_counter() - t0 >= plan.duration:
                    return
                index = next(counter)
                if plan.requests is not None and index >= plan.requests:
                    return
                record = await self.one(plan, index, t0)
                records.append(record)
                done(record)

        await asyncio.gather(*(client() for _ in range(int(plan.level))))
        return records, time.perf_counter() - t0

    async def _open(self, plan: LevelPlan, done: Callable[[Record], None]) -> tuple[list[Record], float]:
        arrivals = poisson_arrivals(plan.level, count=plan.requests, duration=plan.duration, seed=plan.seed)
        records: list[Record] = []
        tasks: set[asyncio.Task[None]] = set()
        t0 = time.perf_counter()

        async def tracked(work: Awaitable[Record]) -> None:
            record = await work
            records.append(record)
            done(record)

        for index, at in enumerate(arrivals):
            delay = at - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= plan.max_in_flight:
                record = Record(self.target.name, plan.level, plan.mode, index, *self._text(index))
                record.start_s = record.scheduled_s = at
                record.fail("client_overflow", f"{plan.max_in_flight} requests already open")
                records.append(record)
                done(record)
                continue
            task = asyncio.create_task(tracked(self._scheduled(plan, index, t0, at)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return records, time.perf_counter() - t0

    async def _scheduled(self, plan: LevelPlan, index: int, t0: float, at: float) -> Record:
        record = await self.one(plan, index, t0)
        record.scheduled_s = at
        return record

    def _text(self, index: int) -> tuple[int, int]:
        text_id, text = self.texts.pick(index)
        return text_id, len(text)
