"""Health that tells the truth: faults injected in each stage of the worker, and a hung step.

A fault confined to one request (``is_ready``, ``on_leave``, a step) fails that request only; one that
kills the worker loop or stalls a step past the watchdog marks the model failed: ``/ready`` says so,
queued and running requests get 503 at once (none hangs), and the server restarts the model, a
bounded number of times, logging each step.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from engines.errors import InternalError, ServiceUnavailable
from server.app import create_app
from server.settings import Settings
from tests.reliability.helpers import MODEL, WorkerEngine, assert_error, drain, eventually, wait_until
from tests.support.servers import serve_app


async def loaded(**worker) -> WorkerEngine:
    engine = WorkerEngine(**worker)
    await engine.load()
    return engine


async def test_is_ready_failing_fails_that_job_only():
    engine = await loaded()
    try:
        bad = engine.worker.submit({"i": 0, "n": 3, "bad": True})
        good = engine.worker.submit({"i": 0, "n": 3})

        def is_ready(job):
            if job.state.get("bad"):
                raise RuntimeError("is_ready broke")
            return True

        engine.hooks["is_ready"] = is_ready
        with pytest.raises(InternalError):
            await drain(bad)
        assert len(await drain(good)) == 3
        assert engine.health() is None  # the worker lives on
    finally:
        await engine.close()


async def test_on_leave_failing_does_not_kill_the_worker():
    engine = await loaded()
    try:
        engine.hooks["on_leave"] = lambda job: (_ for _ in ()).throw(RuntimeError("cleanup broke"))
        first = await drain(engine.worker.submit({"i": 0, "n": 2}))
        second = await drain(engine.worker.submit({"i": 0, "n": 2}))
        assert len(first) == len(second) == 2 and engine.health() is None
    finally:
        await engine.close()


async def test_a_failing_batch_selection_kills_the_worker_and_fails_every_job_at_once():
    engine = await loaded()
    worker = engine.worker
    gate = threading.Event()
    engine.hooks["step"] = lambda batch: gate.wait(5)
    try:
        running = worker.submit({"i": 0, "n": 50})
        await eventually(lambda: running.steps > 0)
        queued = [worker.submit({"i": 0, "n": 3}) for _ in range(2)]
        original = worker._next_batch
        worker._next_batch = lambda: (_ for _ in ()).throw(RuntimeError("selection broke"))  # type: ignore[method-assign]
        gate.set()
        for job in (running, *queued):  # all of them end, promptly, with a 503-class error
            with pytest.raises(ServiceUnavailable):
                await asyncio.wait_for(drain(job), 5)
        assert "selection broke" not in (engine.health() or "") and "worker loop failed" in engine.health()
        with pytest.raises(ServiceUnavailable):
            worker.submit({"i": 0, "n": 1})
        worker._next_batch = original  # type: ignore[method-assign]
    finally:
        gate.set()
        await engine.close()


async def test_a_hung_step_is_caught_by_the_watchdog_and_its_jobs_fail():
    engine = await loaded(watchdog_s=0.3)
    gate = threading.Event()
    engine.hooks["step"] = lambda batch: gate.wait(10)
    try:
        hung = engine.worker.submit({"i": 0, "n": 3})
        waiting = engine.worker.submit({"i": 0, "n": 3})
        await asyncio.sleep(0.5)
        started = time.monotonic()
        assert "no progress" in engine.health()
        for job in (hung, waiting):
            with pytest.raises(ServiceUnavailable):
                await asyncio.wait_for(drain(job), 2)
        assert time.monotonic() - started < 2
    finally:
        gate.set()
        await engine.close()  # the released thread sees the fault and leaves without touching its jobs


async def test_a_hung_on_leave_is_caught_by_the_watchdog_too():
    engine = await loaded(watchdog_s=0.3)
    gate = threading.Event()
    engine.hooks["on_leave"] = lambda job: gate.wait(10)  # e.g. cache surgery that never returns
    try:
        leaving = engine.worker.submit({"i": 0, "n": 1})
        assert len(await asyncio.wait_for(drain(leaving), 5)) == 1  # its audio is out; on_leave now hangs
        waiting = engine.worker.submit({"i": 0, "n": 3})
        await asyncio.sleep(0.5)
        assert "no progress" in engine.health()
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(drain(waiting), 2)
    finally:
        gate.set()
        await engine.close()


def settings(**extra) -> Settings:
    return Settings(models=[MODEL], warmup=False, watchdog_s=0.4, engine_max_restarts=1, **extra)


def test_ready_turns_503_queued_requests_fail_and_the_model_restarts_once(caplog):
    engine = WorkerEngine(chunks=3, watchdog_s=0.4)
    gate = threading.Event()
    body = {"model": MODEL, "input": "Hello there.", "voice": "alpha"}
    with serve_app(create_app(settings(), engines={MODEL: engine})) as base:
        assert httpx.post(f"{base}/v1/audio/speech", json=body, timeout=30).status_code == 200
        engine.hooks["step"] = lambda batch: gate.wait(30)  # every step now hangs
        with httpx.Client(timeout=30) as client:
            started = time.monotonic()
            responses = []
            threads = [
                threading.Thread(target=lambda: responses.append(client.post(f"{base}/v1/audio/speech", json=body)))
                for _ in range(3)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)
            assert time.monotonic() - started < 10  # nobody waited for a client-side timeout
            for response in responses:
                assert_error(response, 503)
            ready = httpx.get(f"{base}/ready")
            assert ready.status_code == 503 and ready.json()["models"][MODEL] in ("restarting", "ready")
            engine.hooks.clear()
            gate.set()
            wait_until(lambda: httpx.get(f"{base}/ready").status_code == 200, timeout=20)
            assert engine.loads == 2
            assert httpx.post(f"{base}/v1/audio/speech", json=body).status_code == 200
            assert "tts_engine_restarts_total" in httpx.get(f"{base}/metrics").text
            # A second failure: no restarts left, so the model stays failed and says why.
            gate.clear()
            engine.hooks["step"] = lambda batch: gate.wait(30)
            assert_error(client.post(f"{base}/v1/audio/speech", json=body), 503)
            wait_until(lambda: httpx.get(f"{base}/ready").json()["models"][MODEL] == "failed", timeout=10)
            ready = httpx.get(f"{base}/ready").json()
            assert "no restarts left" in ready["errors"][MODEL]
            assert_error(client.post(f"{base}/v1/audio/speech", json=body), 503)
            assert httpx.get(f"{base}/health").status_code == 200
            gate.set()
    logged = caplog.text
    assert "restart 1 of 1" in logged and "no restarts left" in logged
