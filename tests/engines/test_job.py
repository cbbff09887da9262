"""`Job`: the thread-safe hand-over between a worker thread and the request's reader."""

import asyncio
import threading

import numpy as np
import pytest

from engines.base import PcmChunk
from engines.job import Job


def second_of_audio() -> PcmChunk:
    return PcmChunk(np.zeros(24000, dtype=np.float32), 24000)


async def emit_from_thread(job: Job, items) -> None:
    def run():
        for item in items:
            job.emit(item)
        job.finish()

    thread = threading.Thread(target=run)
    thread.start()
    await asyncio.to_thread(thread.join)


async def test_items_cross_from_the_worker_thread_in_order_and_end_once():
    job = Job({}, asyncio.get_running_loop())
    await emit_from_thread(job, [1, 2, 3])
    job.finish()  # a second finish is ignored
    job.fail(RuntimeError("late"))  # and so is a failure after it
    assert [x async for x in job.results()] == [1, 2, 3]
    assert job.finished and not job.failed


async def test_a_failure_reaches_the_reader_after_what_came_before_it():
    job = Job({}, asyncio.get_running_loop())
    job.emit(1)
    job.fail(ValueError("bad segment"))
    seen = []
    with pytest.raises(ValueError, match="bad segment"):
        async for item in job.results():
            seen.append(item)
    assert seen == [1] and job.failed


async def test_closing_the_reader_cancels_the_job():
    job = Job({}, asyncio.get_running_loop())
    job.emit(1)
    job.emit(2)
    reader = job.results()
    assert await reader.__anext__() == 1 and not job.cancelled
    await reader.aclose()
    assert job.cancelled


async def test_backlog_counts_untaken_audio_and_wakes_the_worker_when_drained():
    drained = threading.Event()
    job = Job({}, asyncio.get_running_loop(), max_buffered_s=2.0, on_drained=drained.set)
    for _ in range(3):
        job.emit(second_of_audio())
    job.emit("not audio")  # counts nothing
    assert job.buffered_seconds == pytest.approx(3.0) and job.backlogged
    reader = job.results()
    await reader.__anext__()
    assert job.backlogged and not drained.is_set()  # 2 s still wait: at the bound
    await reader.__anext__()
    assert not job.backlogged and drained.is_set() and job.buffered_seconds == pytest.approx(1.0)
    await reader.aclose()


async def test_no_bound_means_never_backlogged():
    job = Job({}, asyncio.get_running_loop())
    for _ in range(100):
        job.emit(second_of_audio())
    assert job.buffered_seconds == pytest.approx(100.0) and not job.backlogged
