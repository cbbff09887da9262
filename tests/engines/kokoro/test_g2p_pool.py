"""The G2P threads: priorities, failures on every thread, and shutdown with work still queued."""

import asyncio
import threading

import pytest

from engines.errors import ServiceUnavailable, UnsupportedLanguage
from engines.kokoro.g2p_pool import FIRST, LATER, G2PPool

MODEL = "hexgrad/Kokoro-82M"


async def test_first_segments_jump_the_queue():
    pool = G2PPool(MODEL, workers=1)
    gate, order = threading.Event(), []
    try:
        blocker = asyncio.create_task(pool.run(LATER, lambda _: gate.wait(30)))
        await asyncio.sleep(0.2)  # the only thread is now busy
        later = asyncio.create_task(pool.run(LATER, lambda _: order.append("later")))
        first = asyncio.create_task(pool.run(FIRST, lambda _: order.append("first")))
        await asyncio.sleep(0.1)
        gate.set()
        await asyncio.gather(blocker, later, first)
        assert order == ["first", "later"]
    finally:
        pool.shutdown()


async def test_a_failure_on_every_thread_is_raised_and_does_not_wedge_the_threads():
    pool = G2PPool(MODEL, workers=2)
    try:

        def fail(_):
            raise UnsupportedLanguage("no such G2P here")

        for _ in range(2):  # twice, and concurrently: no barrier round may hold a thread hostage
            results = await asyncio.wait_for(
                asyncio.gather(pool.on_every_thread(fail), pool.on_every_thread(fail), return_exceptions=True), 30
            )
            assert all(isinstance(r, UnsupportedLanguage) for r in results)
        assert await pool.run(FIRST, lambda _: "still serving") == "still serving"
    finally:
        pool.shutdown()


async def test_shutdown_fails_queued_work_instead_of_stranding_it():
    pool = G2PPool(MODEL, workers=1)
    gate = threading.Event()
    busy = asyncio.create_task(pool.run(LATER, lambda _: gate.wait(30)))
    await asyncio.sleep(0.2)
    queued = asyncio.create_task(pool.run(LATER, lambda _: "never"))
    await asyncio.sleep(0.1)
    pool.shutdown()
    gate.set()
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(queued, 10)
    assert await busy is True
