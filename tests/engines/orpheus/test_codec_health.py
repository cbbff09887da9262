"""Health of the SNAC codec stage: a decode that hangs, and a codec thread that dies.

The LM worker has its own watchdog (tests/reliability/test_health.py); the codec stage runs on a
thread of its own, so its faults must show in the engine's health too, or the server would never
restart a model whose audio stopped while its LM looks idle and well.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from engines.errors import ServiceUnavailable
from engines.orpheus.settings import ORPHEUS_MODEL
from server.app import create_app
from tests.engines.orpheus.conftest import settings_for
from tests.engines.orpheus.helpers import request, synthesize, wait_until
from tests.support.servers import serve_app

WATCHDOG_S = 0.5


def hang_decodes(monkeypatch, engine) -> tuple[threading.Event, threading.Event]:
    """Make every SNAC decode of ``engine`` block until ``gate`` is set; ``entered`` says one started."""
    codec = engine.codec.codec
    original = codec.decode
    entered, gate = threading.Event(), threading.Event()

    def hung(windows):
        entered.set()
        gate.wait(30)
        return original(windows)

    monkeypatch.setattr(codec, "decode", hung)
    return entered, gate


async def drain(session_or_gen) -> list:
    return [chunk async for chunk in session_or_gen]


async def test_a_hung_decode_is_caught_by_the_watchdog_and_the_engine_reports_it(make_engine, monkeypatch):
    engine = await make_engine(watchdog_s=WATCHDOG_S)
    assert engine.health() is None
    entered, gate = hang_decodes(monkeypatch, engine)
    thread = engine.codec._thread
    task = asyncio.create_task(drain(engine.synthesize(request(seed=2, max_tokens=35))))
    try:
        await wait_until(entered.is_set, timeout=30)
        started = time.monotonic()
        assert engine.codec.health() is None  # a decode that has just begun is not a hang
        await wait_until(lambda: engine.health() is not None, timeout=10)
        assert time.monotonic() - started >= WATCHDOG_S * 0.9  # the watchdog's doing, not something else
        reason = engine.health()
        assert "SNAC decode made no progress" in reason and f"{WATCHDOG_S:g} s" in reason
        assert engine.worker.health() is None  # the LM is idle and well: only the codec stage knows
        assert not task.done()  # its audio is stuck behind the decode
        # What the server does next: close the engine to restart it. The stuck request ends in a 503,
        # and closing does not wait out the hung decode (a restart would sit idle meanwhile).
        closing = asyncio.create_task(engine.close())
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(task, 5)
        await asyncio.wait_for(closing, 10)
        assert thread.is_alive()  # abandoned, still in the decode
    finally:
        gate.set()
        thread.join(30)  # it decodes with the SNAC weights the other tests' engines share
    assert not thread.is_alive()  # released, it saw the stop and left


async def test_a_decode_that_recovers_before_the_watchdog_is_not_a_fault(make_engine, monkeypatch):
    engine = await make_engine(watchdog_s=WATCHDOG_S)
    entered, gate = hang_decodes(monkeypatch, engine)
    task = asyncio.create_task(synthesize(engine, seed=2, max_tokens=35))
    await wait_until(entered.is_set, timeout=30)
    await asyncio.sleep(WATCHDOG_S / 5)
    gate.set()  # a slow decode, not a hung one
    audio = await asyncio.wait_for(task, 30)
    assert audio.size == 5 * 2048
    await asyncio.sleep(WATCHDOG_S * 1.5)  # an idle stage is not a hung one, however long it idles
    assert engine.health() is None


class CodecCrash(BaseException):
    """Escapes every ``except Exception`` of the stage, as nothing a decode raises normally does."""


# The thread is meant to die here: its unhandled exception is the fault under test, not a test bug.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_codec_thread_is_reported(make_engine, monkeypatch):
    engine = await make_engine(watchdog_s=WATCHDOG_S)
    codec = engine.codec.codec

    def crash(windows):
        raise CodecCrash("the codec thread dies")

    monkeypatch.setattr(codec, "decode", crash)
    task = asyncio.create_task(drain(engine.synthesize(request(seed=2, max_tokens=35))))
    thread = engine.codec._thread
    await wait_until(lambda: not thread.is_alive(), timeout=30)
    assert engine.codec.health() == "the SNAC codec thread exited"
    assert engine.health() == "the SNAC codec thread exited"
    assert engine.worker.health() is None and not task.done()
    await engine.close()
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(task, 5)


async def test_a_stopped_codec_stage_is_not_reported_as_dead(make_engine):
    engine = await make_engine(watchdog_s=WATCHDOG_S)
    stage = engine.codec
    await asyncio.to_thread(stage.stop)
    assert stage.health() is None  # stopping on purpose (shutdown, restart) is no fault


def test_the_server_restarts_orpheus_after_a_hung_decode(orpheus_dirs, monkeypatch):
    settings = settings_for(orpheus_dirs, watchdog_s=WATCHDOG_S, engine_max_restarts=1)
    app = create_app(settings)
    body = {"model": ORPHEUS_MODEL, "input": "Hello there.", "voice": "tara", "seed": 1}
    with serve_app(app) as base:
        engine = app.state.engine_pool.engines[ORPHEUS_MODEL]
        first_codec = engine.codec
        entered, gate = hang_decodes(monkeypatch, engine)
        try:
            started = time.monotonic()
            response = httpx.post(f"{base}/v1/audio/speech", json=body, timeout=60)
            assert response.status_code == 503, response.text  # not a client-side timeout
            assert entered.is_set() and time.monotonic() - started < 15
            wait_until_sync(lambda: httpx.get(f"{base}/ready").status_code == 200, timeout=60)
            recovered = time.monotonic() - started
        finally:
            gate.set()
        assert recovered < 20  # the restart does not wait out the hung decode (it did: 30 s more)
        assert engine.codec is not first_codec  # a fresh codec stage (and SNAC) after the restart
        assert app.state.engine_pool.restarts[ORPHEUS_MODEL] == 1
        response = httpx.post(f"{base}/v1/audio/speech", json=body, timeout=60)
        assert response.status_code == 200 and len(response.content) > 44
    print(f"\nhung SNAC decode: model ready again {recovered:.1f} s after the request")


def wait_until_sync(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)
