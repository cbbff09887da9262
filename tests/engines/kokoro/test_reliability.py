"""Kokoro under faults: cancellation inside a step, per-stage failures confined to their request,
the phoneme bound on work, voice weights in a safe range, and the worker's health."""

from __future__ import annotations

import asyncio

import pytest

from engines.base import SessionParams, chunk_seconds
from engines.errors import InputTooLong, InternalError, InvalidVoice
from engines.kokoro.voices import parse_voice_spec
from tests.engines.kokoro.conftest import MODEL


async def open_spoken(engine, text: str, **params):
    session = await engine.open_session(SessionParams(model=MODEL, voice="af_heart", **params))
    await session.feed(text)
    await session.commit()
    return session


async def audio(session) -> float:
    seconds = 0.0
    async for event in session.events():
        seconds += chunk_seconds(event)
    return seconds


async def test_a_client_that_leaves_mid_step_costs_no_further_front_call(make_kokoro):
    """Two requests of very different lengths land in different buckets of one step; the short one's
    client leaves while the long one's front runs: the short bucket's front is skipped."""
    engine = await make_kokoro(kokoro_batch_policy="front", max_wait_ms=2000)
    long = await open_spoken(engine, "A rather long first sentence, to sit in a bucket of its own.", seed=1)
    short = await open_spoken(engine, "Hi.", seed=2)
    front, calls = engine.batcher.forward.front, []

    def watched(items):
        calls.append(len(items))
        if len(calls) == 1:
            short.job.cancel()  # the short request's client goes away during this step
        return front(items)

    engine.batcher.forward.front = watched
    skipped = engine.batcher.stats()["items_skipped_cancelled"]
    try:
        await audio(long)
    finally:
        engine.batcher.forward.front = front
        await short.close()
        await long.close()
    assert calls == [1]  # without the check before each front, the short bucket's front would run too
    assert engine.batcher.stats()["items_skipped_cancelled"] == skipped + 1


@pytest.mark.parametrize("stage", ["g2p", "front", "decoder", "emit"])
async def test_a_failure_in_one_stage_fails_that_request_only(make_kokoro, monkeypatch, stage):
    """The poisoned request (text "Zebra...", speed 1.5, seed 1000) fails; the other, in the same
    steps, is served; the worker stays healthy. "emit" runs the batched policy, so both requests' audio
    leaves the same decoder call and one of them fails while it is handed over."""
    policy = "batched" if stage == "emit" else "front"
    engine = await make_kokoro(kokoro_batch_policy=policy, max_wait_ms=500)
    forward = engine.batcher.forward
    decoder_calls = []
    if stage == "g2p":
        run = engine._g2p.run

        async def g2p(priority, fn):
            if fn.__defaults__ and "Zebra" in str(fn.__defaults__[0]):  # a segment's text rides in the lambda
                raise RuntimeError("g2p broke")
            return await run(priority, fn)

        monkeypatch.setattr(engine._g2p, "run", g2p)
    elif stage == "front":
        front = forward.front

        def poisoned_front(items):
            if any(item.speed == 1.5 for item in items):
                raise RuntimeError("front broke")
            return front(items)

        monkeypatch.setattr(forward, "front", poisoned_front)
    elif stage == "emit":
        emit, decode = engine.batcher._emit, forward.decode

        def poisoned_emit(entry, prosody, data):
            if entry.request.speed == 1.5:
                raise RuntimeError("emit broke")
            return emit(entry, prosody, data)

        def counted_decode(prosody, generators):
            decoder_calls.append(len(prosody))
            return decode(prosody, generators)

        monkeypatch.setattr(engine.batcher, "_emit", poisoned_emit)
        monkeypatch.setattr(forward, "decode", counted_decode)
    else:
        decode_stages = forward.decode_stages  # what decode() and the CPU schedule's slices both start from

        def poisoned_decode(prosody, generators):
            if any(g.initial_seed() >= 1000 for g in generators):  # seeds are the request's seed + chunk index
                raise RuntimeError("decoder broke")
            return decode_stages(prosody, generators)

        monkeypatch.setattr(forward, "decode_stages", poisoned_decode)
    bad = await open_spoken(engine, "Zebra crossing ahead.", seed=1000, speed=1.5)
    good = await open_spoken(engine, "Good morning.", seed=4)
    try:
        results = await asyncio.gather(audio(bad), audio(good), return_exceptions=True)
    finally:
        await bad.close()
        await good.close()
    assert isinstance(results[0], InternalError) and results[1] > 0, results
    assert engine.health() is None
    if stage == "emit":
        assert 2 in decoder_calls  # the two requests did share a decoder call


async def test_phonemes_bound_the_work(make_kokoro):
    """An absolute budget: number-heavy text that a per-character ratio refused is spoken; the
    budget refuses what exceeds it, naming the limit."""
    engine = await make_kokoro(kokoro_max_phonemes=600)
    dense = "Call 555-0134 or 555-0199 between 9 and 5; order numbers 88213, 88214, 88215 and 88216 are ready."
    assert await audio(await open_spoken(engine, dense)) > 0  # 97 characters, 303 phonemes
    session = await open_spoken(engine, "777,777,777,777,777,777 " * 4)
    with pytest.raises(InputTooLong) as err:
        await audio(session)
    assert err.value.param == "input" and "600 phonemes" in err.value.message


@pytest.mark.parametrize(
    "spec", ["af_heart(1" + "0" * 309 + ")+af_bella", "af_heart(1000)", "af_heart(0.001)+af_bella", "a+" * 9 + "b"]
)
def test_voice_weights_must_be_finite_and_in_range(spec):
    with pytest.raises(InvalidVoice):
        parse_voice_spec(spec)


def test_ordinary_mixes_still_parse():
    mix = parse_voice_spec("af_bella(2)+af_heart(1)")
    assert [round(w, 3) for _, w in mix.parts] == [0.667, 0.333]
