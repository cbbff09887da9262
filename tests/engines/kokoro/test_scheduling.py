"""The CPU schedule (engines/kokoro/schedule.py): a new request's first chunk waits for at most the
one decoder slice in progress when it became ready, never for other streams' whole chunks."""

import asyncio

import numpy as np

from engines.base import SynthesisRequest

MODEL = "hexgrad/Kokoro-82M"
LONG = " ".join(f"Sentence {i} of a long request keeps the decoder busy." for i in range(10))
SHORT_SEGMENTS = dict(first_segment_chars=40, segment_chars=120, segment_min_chars=100)


def record_work(engine, events: list) -> None:
    """Log each front (the seeds of its requests) and each decoder slice (its request's seed + chunk index)."""
    batcher, forward = engine.batcher, engine.batcher.forward
    real_front, real_stages = batcher._front, forward.decode_stages

    def front(bucket):
        events.append(("front", [w.request.seed for w in bucket]))
        return real_front(bucket)

    def stages(prosody, generators):
        seed, inner = generators[0].initial_seed(), real_stages(prosody, generators)
        while True:
            events.append(("slice", seed))
            try:
                next(inner)
            except StopIteration as done:
                events.append(("done", seed))
                return done.value
            yield

    batcher._front, forward.decode_stages = front, stages


async def test_a_new_request_waits_for_at_most_the_decoder_slice_in_progress(make_kokoro):
    # Forced durations (benchmarks/models/kokoro.py): every later segment is a multi-second decode here.
    engine = await make_kokoro(kokoro_batch_policy="front", max_wait_ms=0, **SHORT_SEGMENTS)
    events: list = []
    record_work(engine, events)
    arrivals: list[str] = []

    async def speak(name: str, text: str, seed: int, **kw) -> np.ndarray:
        request = SynthesisRequest(model=MODEL, text=text, voice="af_heart", seed=seed, **kw)
        chunks = []
        async for chunk in engine.synthesize(request):
            arrivals.append(name)
            chunks.append(chunk.samples)
        return np.concatenate(chunks)

    long = asyncio.create_task(speak("long", LONG, seed=1000, speed=1.5))
    while arrivals.count("long") < 2:  # its later segments are under way
        await asyncio.sleep(0.005)
    submitted_at = len(arrivals)
    new = await speak("new", "Hello there.", seed=1)
    await long

    # From its front (it was ready) to its audio, only the new request's own slices ran: none of the long stream's.
    start = next(i for i, e in enumerate(events) if e[0] == "front" and 1 in e[1])
    end = events.index(("done", 1))
    assert {seed for kind, seed in events[start:end] if kind == "slice"} == {1}, events[start:end]
    # Each decode ran in several slices, so the one in progress when it arrived was a fraction of a chunk.
    assert events[start:end].count(("slice", 1)) >= 5
    # End to end: at most the long chunk whose last slice was running came out in between.
    assert arrivals[submitted_at : arrivals.index("new")].count("long") <= 1, arrivals
    # Slicing moves work, not audio: the new request sounds exactly as it does alone.
    alone = await speak("again", "Hello there.", seed=1)
    np.testing.assert_array_equal(new, alone)
    assert engine.stats()["decoder_batch_histogram"].keys() == {1}


async def test_first_chunks_go_before_streams_already_playing(make_kokoro):
    engine = await make_kokoro(kokoro_batch_policy="front", max_wait_ms=2000, **SHORT_SEGMENTS)
    arrivals: list[str] = []

    async def speak(name: str) -> None:
        request = SynthesisRequest(model=MODEL, text=LONG[:300], voice="af_heart", seed=1, speed=3.0)
        async for _ in engine.synthesize(request):
            arrivals.append(name)

    # Three requests arrive together: all three first chunks come out before any second chunk.
    await asyncio.gather(*(speak(name) for name in "abc"))
    assert sorted(arrivals[:3]) == ["a", "b", "c"], arrivals
    assert len(arrivals) >= 6
