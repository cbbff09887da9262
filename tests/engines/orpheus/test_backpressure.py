"""Backpressure for Orpheus: a reader that stops reading pauses its own generation, nobody else's.

The job's audio waiting for its reader stays near ``max_buffered_audio_s`` plus the segment(s) its
rows were generating when it fell behind (rows finish their segment; ``orpheus_parallel_segments`` of
them at most), not the whole input; reading again resumes it. On a CPU the tiny LM outruns SNAC, so
this also holds when most of the generated audio is still queued at the codec stage.
"""

from __future__ import annotations

import asyncio

import pytest

from engines.base import SessionParams, chunk_seconds
from engines.orpheus.settings import ORPHEUS_MODEL
from engines.orpheus.tokens import SAMPLE_RATE, SAMPLES_PER_FRAME
from tests.engines.orpheus.helpers import synthesize, wait_until

MAX_BUFFERED_S = 0.3
MAX_TOKENS = 35  # 5 frames: one segment is at most 5 * 2048 samples
SEGMENT_S = MAX_TOKENS // 7 * SAMPLES_PER_FRAME / SAMPLE_RATE
SEGMENTS = 12
TEXT = " ".join(f"Part {n} is here." for n in range(SEGMENTS))  # one segment per sentence (20-char segments)


def frames_generated(job) -> int:
    return sum(segment.windows.received for segment in job.state.segments)


@pytest.mark.parametrize("parallel_segments", [1, 2])
async def test_a_reader_that_stops_pauses_its_own_generation_only(make_engine, parallel_segments):
    engine = await make_engine(
        max_buffered_audio_s=MAX_BUFFERED_S,
        orpheus_max_tokens=MAX_TOKENS,
        orpheus_parallel_segments=parallel_segments,
        max_batch_size=4,
        first_segment_chars=20,
        orpheus_segment_chars=20,
        segment_min_chars=1,
    )
    session = await engine.open_session(SessionParams(model=ORPHEUS_MODEL, voice="tara", seed=1))
    events = session.events()
    await session.feed(TEXT)
    await session.commit()
    first = await anext(events)  # then nothing for a while
    job = session.job
    peak = 0.0

    async def watch(seconds: float) -> None:
        nonlocal peak
        for _ in range(int(seconds / 0.01)):
            await asyncio.sleep(0.01)
            peak = max(peak, job.buffered_seconds)

    # Paused: the codec has emitted what was generated, audio waits for the reader, and no frame has come
    # for a while (audio waiting rules out a stall of a busy machine, which also brings no frame).
    async def settled() -> bool:
        before = frames_generated(job)
        await watch(0.5)
        return frames_generated(job) == before and engine.codec.queued == 0 and job.buffered_seconds > 0

    for _ in range(120):
        if await settled():
            break
    else:
        raise AssertionError("the request never paused")
    paused_at = frames_generated(job)
    assert len(job.state.segments) == SEGMENTS and paused_at < SEGMENTS * 5  # not the whole input
    bound = MAX_BUFFERED_S + parallel_segments * SEGMENT_S + 1e-6
    assert peak <= bound, (peak, bound)
    assert job.buffered_seconds > 0 and not job.finished

    # Another request on the same engine is served meanwhile, while the reader's stays paused.
    other = await asyncio.wait_for(synthesize(engine, text="Hello world.", seed=5, max_tokens=MAX_TOKENS), 60)
    assert other.size == 5 * SAMPLES_PER_FRAME
    await watch(0.2)
    assert frames_generated(job) == paused_at and peak <= bound

    # Reading again resumes it, to the end of its input.
    received = chunk_seconds(first)
    async for chunk in events:
        received += chunk_seconds(chunk)
    assert job.finished and not job.failed and all(segment.done for segment in job.state.segments)
    frames = frames_generated(job)  # a random frame may be invalid or end early: count what came
    assert frames > paused_at and received == pytest.approx(frames * SAMPLES_PER_FRAME / SAMPLE_RATE, abs=1e-6)
    await session.close()
    await wait_until(lambda: engine.stats()["active"] == 0)
    print(f"\nparallel_segments={parallel_segments}: peak {peak:.2f} s buffered (bound {bound:.2f} s)")


async def test_frames_waiting_behind_an_unstarted_segment_do_not_pause_the_request():
    """A later segment's finished audio that cannot reach the reader until an earlier segment (evicted,
    not restarted) runs must not count: counting it would pause the request for good."""
    import numpy as np

    from engines.job import Job
    from engines.orpheus.requests import OrpheusRequest, lagging
    from engines.orpheus.sampling import SamplingParams
    from engines.orpheus.snac_stream import WindowConfig

    request = OrpheusRequest("tara", SamplingParams(0.6, 0.8, 1.1, 35), seed=1, windows=WindowConfig(), fade_samples=0)
    request.add_texts(["First.", "Second.", "Third."])
    request.close_input()
    request.absorb()
    first, second, third = request.segments
    first.done = True  # spoken and delivered
    for _ in range(12):  # twelve frames of the third segment, generated while the second was evicted
        third.windows.push(np.zeros(7, dtype=np.int64))
    third.done = True
    job = Job(request, asyncio.get_running_loop(), max_buffered_s=0.5)
    assert not lagging(job)  # the second segment waits for a row: it must be able to get one
    second.generating = True  # once it runs, the third segment's audio is next in line: it counts
    assert lagging(job)
    assert 12 * SAMPLES_PER_FRAME / SAMPLE_RATE >= 0.5
