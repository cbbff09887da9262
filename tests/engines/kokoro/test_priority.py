"""Priority in the Kokoro engine (random weights): with the batch and the queue full of ``batch``
requests, an ``interactive`` one runs from the first step after it is ready, and its chunks decode first."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from engines.base import SynthesisRequest
from tests.engines.kokoro.test_scheduling import LONG, MODEL, SHORT_SEGMENTS, record_work

INTERACTIVE, BATCH = -1, 1


def record_steps(engine) -> list[dict]:
    """Per worker step: the priorities it ran, and whether a ready interactive job was left out."""
    worker, steps, lock = engine._worker, [], threading.Lock()
    real = worker._step

    def step(batch):
        waiting = [j for j in [*worker._active, *worker._pending] if j.priority == INTERACTIVE and j not in batch]
        left_out = any(not j.finished and not j.cancelled and j.state.ready() for j in waiting)
        with lock:
            steps.append({"priorities": [j.priority for j in batch], "interactive_left_out": left_out})
        return real(batch)

    worker._step = step
    return steps


async def test_interactive_runs_within_one_step_of_a_queue_full_of_batch(make_kokoro):
    engine = await make_kokoro(
        kokoro_batch_policy="front", max_wait_ms=0, max_batch_size=2, max_queue_size=16, **SHORT_SEGMENTS
    )
    steps = record_steps(engine)
    work: list = []
    record_work(engine, work)  # fronts and decoder slices, by request seed

    async def speak(name: str, text: str, priority: int, seed: int) -> None:
        request = SynthesisRequest(model=MODEL, text=text, voice="af_heart", seed=seed, priority=priority)
        async for _ in engine.synthesize(request):
            pass

    batch = [asyncio.create_task(speak(f"b{k}", LONG, BATCH, seed=100 + k)) for k in range(6)]
    while sum(1 for s in steps if s["priorities"] == [BATCH, BATCH]) < 2:  # the batch is full of batch work
        await asyncio.sleep(0.01)
    submitted = len(steps)
    await speak("interactive", "Hello there.", INTERACTIVE, seed=1)
    for task in batch:
        task.cancel()
    for task in batch:
        with contextlib.suppress(asyncio.CancelledError):
            await task

    after = steps[submitted:]
    ran = next(i for i, s in enumerate(after) if INTERACTIVE in s["priorities"])
    # Ready and not in the step: at most once (the step already running when it became ready).
    assert sum(s["interactive_left_out"] for s in after[: ran + 1]) <= 1, after[: ran + 1]
    assert engine._worker.snapshot()["jobs_parked"] >= 1  # a batch job gave up its place
    # Then its chunk went through the decoder ahead of every batch chunk waiting (first chunks of the
    # parked and queued requests included): from its front to its audio, only its own slices ran.
    start = next(i for i, e in enumerate(work) if e[0] == "front" and 1 in e[1])
    end = work.index(("done", 1))
    assert {seed for kind, seed in work[start:end] if kind == "slice"} == {1}, work[start:end]
