"""Continuous batching: shared steps, same audio as alone, cancellation, back-pressure, segments."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import torch

from engines.audio import fade
from engines.orpheus.codec import Window
from engines.orpheus.tokens import FRAME_TOKENS, SAMPLES_PER_FRAME, frame_codes
from server.errors import Overloaded, http_status
from tests.engines.orpheus.helpers import request, synthesize, wait_until

# Seeds whose draws sit clear of a sampling tie on the machines tested. Seed 12 (the old second case)
# drew its 10th token within float rounding of a CDF boundary: one row's GEMM against four rows' moved
# that logit in the last bit and picked the neighbouring token (found with the padded-width fix, which
# changed which near-tie shows where). A tie-aware comparison of batched and solo sampling is future work.
CASES = [
    {"text": "Hello world.", "voice": "tara", "seed": 11, "max_tokens": 35},
    {"text": "A rather different, and longer, prompt for leo.", "voice": "leo", "seed": 16, "max_tokens": 28},
    {"text": "<laugh> Oh my.", "voice": "zoe", "seed": 13, "max_tokens": 42, "temperature": 0.9, "top_p": 0.95},
    {"text": "Short.", "voice": "dan", "seed": 14, "max_tokens": 21, "repetition_penalty": 1.1},
]


async def test_concurrent_requests_share_steps_and_sound_as_alone(make_engine):
    solo = await make_engine(max_batch_size=8)
    alone = [await synthesize(solo, **case) for case in CASES]
    assert solo.stats()["max_lm_batch_size_seen"] == 1
    # A fresh batch waits until it is full or max_wait_ms has passed: with room for exactly the 4
    # requests and a wait far longer than any test, the first step starts once all 4 are queued,
    # however slowly they arrive.
    engine = await make_engine(max_batch_size=len(CASES), max_wait_ms=600_000.0)
    together = await asyncio.gather(*(synthesize(engine, **case) for case in CASES))
    for a, b, case in zip(alone, together, CASES):
        assert a.shape == b.shape == (case["max_tokens"] // FRAME_TOKENS * SAMPLES_PER_FRAME,)
        assert np.abs(a - b).max() < 1e-4
    stats = engine.stats()
    assert stats["max_lm_batch_size_seen"] == 4
    assert any(size > 1 for size in stats["lm_batch_size_histogram"])
    assert stats["max_batch_size_seen"] == 4  # the worker's view: 4 requests in one step


async def _first_chunk(stream):
    return (await stream.__anext__()).samples


async def test_cancelled_request_leaves_within_one_step_and_frees_its_row(make_engine):
    engine = await make_engine(max_batch_size=1, max_queue_size=4)
    long = engine.synthesize(request(seed=21, max_tokens=700))
    await _first_chunk(long)
    waiting = asyncio.create_task(synthesize(engine, seed=22, max_tokens=14))
    await wait_until(lambda: engine.stats()["queued"] == 1)  # one row, held by the long request
    assert engine.stats()["active"] == 1
    steps_at_cancel = engine.worker.stats["steps"]
    await long.aclose()  # what the server does when the client disconnects
    short = await asyncio.wait_for(waiting, timeout=30)
    assert short.size == 2 * SAMPLES_PER_FRAME
    stats = engine.stats()
    assert stats["jobs_cancelled"] == 1
    # The long request's row was released at the end of the step running when it was cancelled;
    # the short one's 14 tokens took 13 decode steps after its prefill.
    assert stats["steps"] - steps_at_cancel <= 1 + 13 + 1


async def test_full_queue_answers_429(make_engine):
    engine = await make_engine(max_batch_size=1, max_queue_size=2)
    busy = [asyncio.create_task(synthesize(engine, seed=s, max_tokens=700)) for s in (1, 2)]
    await wait_until(lambda: engine.worker.load == 2)
    with pytest.raises(Overloaded) as info:
        await synthesize(engine, seed=3)
    assert http_status(info.value) == 429
    for task in busy:
        task.cancel()
    await asyncio.gather(*busy, return_exceptions=True)


def _full_decode_of(segment, codec) -> np.ndarray:
    frames = [frame_codes(segment.tokens[i : i + 7]) for i in range(0, len(segment.tokens), 7)]
    return codec.decode([Window(np.stack(frames), 0, segment.windows.noise_seed)])[0]


async def test_long_input_runs_segments_in_parallel_and_joins_them_in_order(make_engine):
    engine = await make_engine(
        max_batch_size=4, orpheus_parallel_segments=2, first_segment_chars=20, orpheus_snac_lookahead_frames=3
    )
    text = "First, a short one. Then a second sentence follows here. And a third one ends it."
    state = engine.plan(request(text=text, seed=5, max_tokens=28))
    segmenter = engine.segmenter()
    texts = segmenter.feed(text) + segmenter.finish()
    assert texts == ["First, a short one.", "Then a second sentence follows here. And a third one ends it."]
    state.add_texts(texts)
    state.close_input()
    job = engine.worker.submit(state)
    audio = np.concatenate([chunk.samples async for chunk in job.results()])
    assert engine.stats()["max_lm_batch_size_seen"] == 2  # both segments of one request ran together
    parts = [_full_decode_of(s, engine.codec.codec) for s in state.segments]
    assert [p.size for p in parts] == [4 * SAMPLES_PER_FRAME] * 2
    n = state.fade_samples
    parts[0][-n:] = fade(parts[0], n, rising=False)[-n:]
    parts[1][:n] = fade(parts[1], n, rising=True)[:n]
    parts[1][-n:] = fade(parts[1], n, rising=False)[-n:]  # every segment ends faded, the last one too
    assert audio.shape == (8 * SAMPLES_PER_FRAME,)
    assert np.abs(audio - np.concatenate(parts)).max() < 1e-5


async def test_new_request_takes_a_row_back_from_look_ahead_segments(make_engine):
    engine = await make_engine(max_batch_size=2, orpheus_parallel_segments=2, first_segment_chars=20)
    text = "One sentence here. Another sentence there. A third sentence too."
    alone = await synthesize(engine, text=text, seed=31, max_tokens=70)
    # Hold the worker in a decode step while the long request's first two segments fill both rows,
    # until the short request is queued: it then needs a row, and only eviction can give it one.
    scheduler = engine.scheduler
    both_rows_taken, release = threading.Event(), threading.Event()
    decode = scheduler._decode

    def gated_decode():
        if not release.is_set() and len(scheduler.rows) == 2:
            both_rows_taken.set()
            release.wait(timeout=60)
        decode()

    scheduler._decode = gated_decode
    long = asyncio.create_task(synthesize(engine, text=text, seed=31, max_tokens=70))
    assert await asyncio.to_thread(both_rows_taken.wait, 60)
    short_task = asyncio.create_task(synthesize(engine, seed=32, max_tokens=14))
    await wait_until(lambda: engine.stats()["queued"] == 1)
    release.set()
    short = await asyncio.wait_for(short_task, timeout=60)
    assert short.size == 2 * SAMPLES_PER_FRAME
    assert engine.stats()["sequences_evicted"] >= 1
    assert np.abs(await long - alone).max() < 1e-4  # an evicted segment restarts from its seed


async def test_end_of_speech_flushes_the_last_frames(make_engine):
    engine = await make_engine()
    head = engine.scheduler.head
    original = head.scores
    calls = {"n": 0}

    def scores_ending_after_three_frames(hidden, slots):
        scores = original(hidden, slots)
        calls["n"] += 1
        if calls["n"] == 3 * FRAME_TOKENS + 1:  # the token after 3 frames: force end of speech
            scores[:, -1] = torch.where(slots == 0, torch.tensor(1e9), scores[:, -1])
        return scores

    head.scores = scores_ending_after_three_frames
    audio = await synthesize(engine, seed=41, max_tokens=700)
    assert audio.shape == (3 * SAMPLES_PER_FRAME,)
    assert engine.stats()["tokens_generated"] == 3 * FRAME_TOKENS + 1
