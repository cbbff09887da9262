"""Priority in the Orpheus engine (tiny random Llama): with every cache row and the queue held by
``batch`` requests, an ``interactive`` one gets a row in the first step after it arrives; the batch
request it displaced resumes where it stopped and delivers all of its audio."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import numpy as np

from engines.base import SessionParams, SynthesisRequest
from engines.orpheus.settings import ORPHEUS_MODEL
from engines.orpheus.tokens import SAMPLE_RATE, SAMPLES_PER_FRAME

INTERACTIVE, BATCH = -1, 1
LONG_TOKENS = 350  # 50 frames: a batch request holds its row for many steps


def record_steps(engine) -> list[dict]:
    worker, scheduler, steps, lock = engine.worker, engine.scheduler, [], threading.Lock()
    real = worker._step

    def step(batch):
        waiting = [j for j in [*worker._active, *worker._pending] if j.priority == INTERACTIVE and j not in batch]
        left_out = any(not j.finished and not j.cancelled and worker._ready(j) for j in waiting)
        real(batch)
        with lock:
            steps.append(
                {
                    "priorities": [j.priority for j in batch],
                    "interactive_left_out": left_out,
                    "interactive_rows": sum(row.job.priority == INTERACTIVE for row in scheduler.rows),
                }
            )

    worker._step = step
    return steps


def request(seed: int, priority: int, max_tokens: int) -> SynthesisRequest:
    return SynthesisRequest(
        model=ORPHEUS_MODEL,
        text="Hello world.",
        voice="tara",
        seed=seed,
        priority=priority,
        sampling={"max_tokens": max_tokens},
    )


async def audio_of(engine, req: SynthesisRequest) -> np.ndarray:
    chunks = [chunk.samples async for chunk in engine.synthesize(req)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


async def test_interactive_gets_a_row_within_one_step_and_the_parked_request_resumes(make_engine):
    engine = await make_engine(
        max_batch_size=2, max_queue_size=16, max_wait_ms=0.0, orpheus_max_tokens=LONG_TOKENS, max_buffered_audio_s=600
    )
    # The two batch requests that will hold the rows, alone first (b1, the newer, is the one parked).
    solos = [await audio_of(engine, request(100 + k, BATCH, LONG_TOKENS)) for k in range(2)]
    steps = record_steps(engine)
    batch = [asyncio.create_task(audio_of(engine, request(100 + k, BATCH, LONG_TOKENS))) for k in range(5)]
    while sum(1 for s in steps if s["priorities"] == [BATCH, BATCH]) < 3:  # both rows generate batch work
        await asyncio.sleep(0.005)
    submitted = len(steps)
    interactive = await audio_of(engine, request(1, INTERACTIVE, 35))
    assert interactive.size > 0

    after = steps[submitted:]
    ran = next(i for i, s in enumerate(after) if INTERACTIVE in s["priorities"])
    assert sum(s["interactive_left_out"] for s in after[: ran + 1]) <= 1, after[: ran + 1]
    assert after[ran]["interactive_rows"] == 1  # prefilled in that very step
    assert engine.scheduler.stats()["sequences_parked"] >= 1

    results = await asyncio.gather(*batch)
    # Parked or not, each delivers all of its audio: as long as alone, so nothing was lost or said
    # twice (a segment restarted from scratch would repeat what had already left; see the test below
    # for the tokens themselves).
    for audio, solo in zip(results, solos):
        assert audio.size == solo.size <= LONG_TOKENS // 7 * SAMPLES_PER_FRAME
    assert solos[1].size / SAMPLE_RATE > 1.0  # long enough to have been parked part way


async def test_a_parked_sequence_resumes_with_the_tokens_it_would_have_drawn(make_engine):
    """One row: the batch request runs alone, is parked for the interactive one, and comes back through a
    prefill of its prompt and its tokens; its sampler resumes at the same counter, so it draws what it
    would have drawn had it never left (the same single-row computation but for that one prefill)."""
    engine = await make_engine(max_batch_size=1, max_queue_size=8, max_wait_ms=0.0, orpheus_max_tokens=LONG_TOKENS)

    async def tokens_of(seed: int, priority: int, max_tokens: int, started=None) -> list[int]:
        params = SessionParams(
            model=ORPHEUS_MODEL, voice="tara", seed=seed, priority=priority, sampling={"max_tokens": max_tokens}
        )
        session = await engine.open_session(params)
        events = session.events()
        await session.feed("Hello world.")
        await session.commit()
        if started is not None:
            started.set()
        async for _ in events:
            pass
        return list(session.job.state.segments[0].tokens)

    alone = await tokens_of(7, BATCH, LONG_TOKENS)
    steps = record_steps(engine)
    started = asyncio.Event()
    parked = asyncio.create_task(tokens_of(7, BATCH, LONG_TOKENS, started))
    await started.wait()
    while len(steps) < 20:  # part way through its tokens
        await asyncio.sleep(0.002)
    await tokens_of(8, INTERACTIVE, 35)
    resumed = await parked
    assert engine.scheduler.stats()["sequences_parked"] >= 1
    assert 20 < len(alone) and resumed == alone


async def test_cancelled_parked_request_frees_everything(make_engine):
    engine = await make_engine(max_batch_size=1, max_queue_size=8, max_wait_ms=0.0, orpheus_max_tokens=LONG_TOKENS)
    steps = record_steps(engine)
    low = asyncio.create_task(audio_of(engine, request(5, BATCH, LONG_TOKENS)))
    while len(steps) < 3:
        await asyncio.sleep(0.005)
    high = asyncio.create_task(audio_of(engine, request(6, INTERACTIVE, 35)))
    while engine.scheduler.stats()["sequences_parked"] == 0:
        await asyncio.sleep(0.005)
    low.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await low
    assert (await high).size > 0
    while engine.worker.snapshot()["active"] or engine.worker.snapshot()["queued"]:
        await asyncio.sleep(0.01)
    assert engine.scheduler.rows == []
