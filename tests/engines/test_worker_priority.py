"""Priorities in the BatchWorker (a stand-in step): better classes first, parking, aging."""

from __future__ import annotations

import asyncio
import threading

from engines.worker import BatchWorker

INTERACTIVE, STANDARD, BATCH = -1, 0, 1


class Recorder:
    """Emits one item per step for each job; records each step's job names. Jobs run ``n`` steps."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()
        self.slow = threading.Event()  # while clear, each step takes 5 ms (a model step's length)

    def __call__(self, batch) -> None:
        with self.lock:
            self.batches.append([job.state["name"] for job in batch])
        self.slow.wait(0.005)
        for job in batch:
            job.state["i"] += 1
            job.emit(job.state["i"])
            if job.state["i"] >= job.state["n"]:
                job.finish()

    def steps(self) -> int:
        with self.lock:
            return len(self.batches)

    def first_step_of(self, name: str) -> int:
        with self.lock:
            return next(i for i, names in enumerate(self.batches) if name in names)


async def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.002)


def job_state(name: str, n: int) -> dict:
    return {"name": name, "i": 0, "n": n}


async def test_interactive_starts_within_one_step_with_batch_full_of_batch_work():
    step = Recorder()
    worker = BatchWorker("t", step, max_batch_size=2, max_wait_ms=0, max_queue_size=16)
    worker.start()
    try:
        # A batch of batch work running, and a queue full of more.
        batch = [worker.submit(job_state(f"b{k}", 10_000), priority=BATCH) for k in range(10)]
        await wait_until(lambda: step.steps() >= 3)
        submitted_at = step.steps()
        interactive = worker.submit(job_state("i", 3), priority=INTERACTIVE)
        assert [x async for x in interactive.results()] == [1, 2, 3]
        # The step in progress when it arrived, then its own: at most one step after that.
        assert step.first_step_of("i") <= submitted_at + 1, step.batches[submitted_at - 1 : submitted_at + 3]
        assert worker.snapshot()["jobs_parked"] >= 1
        # A parked job resumes where it stopped: its numbers go on without a gap or a repeat.
        b0 = [x for x in await _take(batch[0], 20)]
        assert b0 == list(range(1, 21))
        for job in batch:
            job.cancel()
    finally:
        await worker.stop()


async def _take(job, n: int) -> list[int]:
    out = []
    async for x in job.results():
        out.append(x)
        if len(out) == n:
            break
    return out


async def test_queued_jobs_are_admitted_best_class_first():
    step = Recorder()
    worker = BatchWorker("t", step, max_batch_size=1, max_wait_ms=0, max_queue_size=16, preempt=False)
    worker.start()
    try:
        first = worker.submit(job_state("first", 5), priority=STANDARD)
        await wait_until(lambda: step.steps() >= 1)
        jobs = [
            worker.submit(job_state("batch", 1), priority=BATCH),
            worker.submit(job_state("standard", 1), priority=STANDARD),
            worker.submit(job_state("interactive", 1), priority=INTERACTIVE),
        ]
        for job in [first, *jobs]:
            [x async for x in job.results()]
        order = [names[0] for names in step.batches if names[0] != "first"]
        assert order == ["interactive", "standard", "batch"]
    finally:
        await worker.stop()


async def test_aging_bounds_how_long_a_batch_job_waits():
    """A steady stream of interactive jobs (each lasting 2 steps) keeps the only slot busy; a batch
    job still starts within about 2 * aging_steps steps (it gains one class per aging_steps)."""
    step = Recorder()
    aging = 10
    worker = BatchWorker("t", step, max_batch_size=1, max_wait_ms=0, max_queue_size=64, aging_steps=aging)
    worker.start()
    try:
        first = worker.submit(job_state("i0", 2), priority=INTERACTIVE)
        await wait_until(lambda: step.steps() >= 1)
        submitted_at = step.steps()
        low = worker.submit(job_state("low", 1), priority=BATCH)
        k = 1
        jobs = [first]
        while not low.finished and k < 200:  # always an interactive job waiting
            jobs.append(worker.submit(job_state(f"i{k}", 2), priority=INTERACTIVE))
            k += 1
            await wait_until(lambda: len(worker._pending) <= 1 or low.finished, 10)
        assert low.finished, "the batch job starved"
        started = step.first_step_of("low")
        assert started - submitted_at <= 2 * aging + 4, (started, submitted_at)
        assert started - submitted_at >= aging  # not before it had aged: interactive work went first
        for job in jobs:
            job.cancel()
    finally:
        await worker.stop()


async def test_same_class_is_never_parked():
    step = Recorder()
    worker = BatchWorker("t", step, max_batch_size=1, max_wait_ms=0, max_queue_size=8, aging_steps=2)
    worker.start()
    try:
        a = worker.submit(job_state("a", 30), priority=BATCH)
        await wait_until(lambda: step.steps() >= 1)
        b = worker.submit(job_state("b", 1), priority=BATCH)  # ages past a's class, but is not of a better one
        assert len([x async for x in a.results()]) == 30
        [x async for x in b.results()]
        assert worker.snapshot()["jobs_parked"] == 0
        assert step.first_step_of("b") >= 30
    finally:
        await worker.stop()
