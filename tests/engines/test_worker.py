import asyncio
import threading
import time

import pytest

from engines.worker import BatchWorker
from server.errors import InternalError, Overloaded, http_status


class Counter:
    """A step that emits the job's next number until it reaches its target."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = gate

    def __call__(self, batch):
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append([job.state["name"] for job in batch])
        for job in batch:
            state = job.state
            state["i"] += 1
            job.emit(state["i"])
            if state["i"] >= state["n"]:
                job.finish()


def make(step, **kw) -> BatchWorker:
    params = dict(max_batch_size=4, max_wait_ms=20, max_queue_size=8) | kw
    worker = BatchWorker("test", step, **params)
    worker.start()
    return worker


async def drain(job):
    return [x async for x in job.results()]


async def test_concurrent_jobs_share_steps():
    step = Counter()
    worker = make(step, max_wait_ms=500)  # generous: a loaded machine must not split the batch
    try:
        jobs = [worker.submit({"name": f"j{k}", "i": 0, "n": 3}) for k in range(3)]
        results = await asyncio.gather(*(drain(j) for j in jobs))
        assert results == [[1, 2, 3]] * 3
        assert step.batches[0] == ["j0", "j1", "j2"]  # all three joined the first step
        for _ in range(100):  # the worker books a job as completed just after its last emit
            stats = worker.snapshot()
            if stats["jobs_completed"] == 3:
                break
            await asyncio.sleep(0.01)
        assert stats["max_batch_size_seen"] == 3 and stats["jobs_completed"] == 3
    finally:
        await worker.stop()


async def test_a_lone_request_waits_for_company_at_most_max_wait_ms():
    """A fresh batch waits up to max_wait_ms for more jobs, never longer; a full batch does not wait."""
    step = Counter()
    worker = make(step, max_batch_size=2, max_wait_ms=400)
    try:
        started = time.monotonic()
        assert await drain(worker.submit({"name": "lone", "i": 0, "n": 1})) == [1]
        lone_s = time.monotonic() - started
        started = time.monotonic()
        pair = [worker.submit({"name": f"p{k}", "i": 0, "n": 1}) for k in range(2)]
        assert await asyncio.gather(*(drain(j) for j in pair)) == [[1], [1]]
        pair_s = time.monotonic() - started
    finally:
        await worker.stop()
    # Bounds with room for a loaded machine: the lone job waited about the 0.4 s, not for ever; the
    # pair filled the batch (max_batch_size=2) and so did not wait for the deadline.
    assert 0.35 <= lone_s < 0.4 + 2.0, lone_s
    assert pair_s < lone_s and step.batches[-1] == ["p0", "p1"], (pair_s, step.batches)


async def test_batch_size_is_bounded_and_late_jobs_join_at_step_boundaries():
    step = Counter()
    worker = make(step, max_batch_size=2, max_wait_ms=0)
    try:
        jobs = [worker.submit({"name": f"j{k}", "i": 0, "n": 2}) for k in range(3)]
        await asyncio.gather(*(drain(j) for j in jobs))
        assert max(len(b) for b in step.batches) == 2
        assert any("j2" in b for b in step.batches[1:])  # the third joined once a slot freed
    finally:
        await worker.stop()


async def test_full_queue_answers_overloaded():
    gate = threading.Event()
    worker = make(Counter(gate), max_queue_size=2)
    try:
        a = worker.submit({"name": "a", "i": 0, "n": 1})
        b = worker.submit({"name": "b", "i": 0, "n": 1})
        with pytest.raises(Overloaded) as err:
            worker.submit({"name": "c", "i": 0, "n": 1})
        assert http_status(err.value) == 429 and err.value.retry_after
        gate.set()
        await asyncio.gather(drain(a), drain(b))
    finally:
        gate.set()
        await worker.stop()


async def test_closing_the_results_cancels_within_one_step():
    step = Counter()
    left = []
    worker = make(step, on_leave=lambda job: left.append(job.state["name"]))
    try:
        job = worker.submit({"name": "long", "i": 0, "n": 10_000})
        results = job.results()
        assert await results.__anext__() == 1
        await results.aclose()
        for _ in range(100):
            if left:
                break
            await asyncio.sleep(0.01)
        assert left == ["long"]
        assert job.state["i"] < 10_000
        assert worker.snapshot()["jobs_cancelled"] == 1
    finally:
        await worker.stop()


async def test_failed_step_fails_its_jobs_but_not_the_worker():
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        Counter()(batch)

    worker = make(flaky)
    try:
        with pytest.raises(InternalError):
            await drain(worker.submit({"name": "a", "i": 0, "n": 1}))
        assert await drain(worker.submit({"name": "b", "i": 0, "n": 1})) == [1]
        assert worker.snapshot()["jobs_failed"] == 1
    finally:
        await worker.stop()


async def test_jobs_that_are_not_ready_sit_out():
    step = Counter()
    worker = make(step, is_ready=lambda job: job.state.get("ready", True))
    try:
        waiting = worker.submit({"name": "waiting", "i": 0, "n": 1, "ready": False})
        other = worker.submit({"name": "other", "i": 0, "n": 2})
        assert await drain(other) == [1, 2]
        assert all("waiting" not in b for b in step.batches)
        waiting.state["ready"] = True
        worker.wake()
        assert await drain(waiting) == [1]
    finally:
        await worker.stop()


async def test_queued_jobs_whose_client_left_do_not_count_towards_429():
    gate = threading.Event()
    worker = make(Counter(gate), max_batch_size=1, max_queue_size=3, max_wait_ms=0)
    try:
        running = worker.submit({"name": "running", "i": 0, "n": 1})
        gone = [worker.submit({"name": f"gone{k}", "i": 0, "n": 1}) for k in range(2)]
        with pytest.raises(Overloaded):
            worker.submit({"name": "refused", "i": 0, "n": 1})
        for job in gone:
            job.cancel()  # their clients disconnected while queued
        late = worker.submit({"name": "late", "i": 0, "n": 1})
        gate.set()
        assert await drain(running) == [1] and await drain(late) == [1]
    finally:
        gate.set()
        await worker.stop()


async def test_a_paused_job_does_not_hold_a_slot_from_queued_ones():
    """A job that cannot run (its reader far behind, a realtime item between sentences) keeps its
    place but not its batch slot: with max_batch_size=1, a queued job still gets steps."""
    resumed = threading.Event()

    def is_ready(job):  # "idle" runs once, then waits (for text, or for its reader) until resumed
        return not (job.state["name"] == "idle" and job.steps > 0 and not resumed.is_set())

    steps: list[str] = []

    def step(batch):
        for job in batch:
            steps.append(job.state["name"])
            if job.state["name"] != "idle" or len(steps) > 2:
                job.finish()

    worker = BatchWorker("t", step, max_batch_size=1, max_wait_ms=0, max_queue_size=4, is_ready=is_ready)
    worker.start()
    try:
        idle = worker.submit({"name": "idle"})
        for _ in range(100):  # its first step
            if steps:
                break
            await asyncio.sleep(0.02)
        busy = worker.submit({"name": "busy"})
        drained = asyncio.wait_for(_drain(busy), 10)  # before the fix "busy" waited for the slot forever
        assert await drained == []  # finished: it got a step while "idle" waited
        assert steps == ["idle", "busy"]
        resumed.set()
        worker.wake()
        assert await asyncio.wait_for(_drain(idle), 10) == []
        assert steps == ["idle", "busy", "idle"]
    finally:
        await worker.stop()


async def _drain(job) -> list:
    return [x async for x in job.results()]
