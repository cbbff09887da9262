"""KokoroEngine on the real architecture with random weights, checked against kokoro.KPipeline."""

import asyncio
import contextlib

import numpy as np
import pytest
import torch

from engines.base import PcmChunk, SynthesisRequest
from engines.kokoro.engine import EDGE_FADE_SAMPLES
from engines.kokoro.g2p import Phonemizer
from engines.kokoro.timestamps import SAMPLES_PER_FRAME
from engines.text import segment_text
from server.errors import InternalError, InvalidVoice, UnsupportedLanguage
from tests.engines.kokoro.conftest import segments_for

MODEL = "hexgrad/Kokoro-82M"
TWO_SENTENCES = "Hello world. This sentence is the second one, and it is a little longer."
# Batched and solo differ only by float reordering in padded ops: well under this (see test_batched_forward).
TOLERANCE = 1e-4


def request(text=TWO_SENTENCES, voice="af_heart", **kw) -> SynthesisRequest:
    return SynthesisRequest(model=MODEL, text=text, voice=voice, **kw)


async def synthesize(engine, **kw) -> list[np.ndarray]:
    return [chunk.samples async for chunk in engine.synthesize(request(**kw))]


def assert_close(a: np.ndarray, b: np.ndarray) -> None:
    """Equal within TOLERANCE outside the 2 ms edge fades (which only ever shrink the signal)."""
    n = EDGE_FADE_SAMPLES
    assert a.shape == b.shape
    np.testing.assert_allclose(a[n:-n], b[n:-n], atol=TOLERANCE)


async def test_audio_equals_kpipeline_for_the_same_weights_voice_and_seed(make_kokoro, kokoro_dir, reference_pipeline):
    # Each chunk alone, as KPipeline speaks it (with context, test_context.py checks against the whole text).
    engine = await make_kokoro(kokoro_segment_context=False)
    ours = await synthesize(engine, seed=3)
    pack = torch.load(kokoro_dir / "voices" / "af_heart.pt", weights_only=True)
    reference = []
    segments = segments_for(engine, TWO_SENTENCES)
    for segment in segments:
        results = reference_pipeline(segment, voice=pack)
        while True:
            torch.manual_seed(3 + len(reference))  # the engine seeds chunk i's vocoder noise with seed + i
            result = next(results, None)
            if result is None:
                break
            reference.append(result)
    assert len(ours) == len(reference) == 2
    for index, (mine, result) in enumerate(zip(ours, reference)):
        # Each chunk is the library's audio less its boundary silence at the join (engines/kokoro/joins.py).
        lead = 0 if index == 0 else int(result.pred_dur[0]) * SAMPLES_PER_FRAME
        tail = 0 if index == len(reference) - 1 else int(result.pred_dur[-1]) * SAMPLES_PER_FRAME
        assert lead + tail > 0
        ref = result.audio.numpy()[lead : result.audio.shape[0] - tail]
        assert_close(mine, ref)
        n = EDGE_FADE_SAMPLES
        assert np.all(np.abs(mine[:n]) <= np.abs(ref[:n]) + TOLERANCE)


async def test_same_seed_same_audio_other_seed_other_audio(kokoro_engine):
    a = np.concatenate(await synthesize(kokoro_engine, text="Hi there.", seed=1))
    b = np.concatenate(await synthesize(kokoro_engine, text="Hi there.", seed=1))
    c = np.concatenate(await synthesize(kokoro_engine, text="Hi there.", seed=2))
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c)


async def test_segments_join_without_clicks(kokoro_engine):
    chunks = await synthesize(kokoro_engine, seed=0)
    joined = np.concatenate(chunks)
    boundary = chunks[0].size
    assert abs(chunks[0][-1]) < 1e-3 and abs(chunks[1][0]) < 1e-3
    window = joined[boundary - 4 : boundary + 4]
    assert np.max(np.abs(np.diff(window))) < 0.05


async def test_long_input_is_split_and_nothing_is_dropped(kokoro_engine):
    text = " ".join(f"Sentence number {i} talks about a topic, which is quite interesting." for i in range(12))
    settings = kokoro_engine.settings
    segments = segment_text(text, first_chars=60, max_chars=200, min_chars=settings.segment_min_chars)
    phonemizer = Phonemizer(MODEL)
    phonemes = [p for s in segments for p in phonemizer.phonemize(s, "a")]
    assert all(len(p) <= 510 for p in phonemes)
    chunks = await synthesize(kokoro_engine, text=text, speed=4.0, seed=0)
    assert len(chunks) == len(phonemes) >= 4
    assert all(c.size > 0 for c in chunks)


async def test_speed_and_voice_mixing(kokoro_engine):
    normal = np.concatenate(await synthesize(kokoro_engine, text="Testing speed.", seed=0))
    fast = np.concatenate(await synthesize(kokoro_engine, text="Testing speed.", seed=0, speed=2.0))
    assert fast.size < 0.7 * normal.size
    mixed = np.concatenate(await synthesize(kokoro_engine, text="Testing speed.", seed=0, voice="af_heart+bm_george"))
    assert mixed.size > 0 and not (mixed.shape == normal.shape and np.allclose(mixed, normal))


async def test_validation_errors(kokoro_engine):
    with pytest.raises(InvalidVoice):
        await kokoro_engine.validate(request(voice="af_nobody"))
    await kokoro_engine.validate(request(voice="ef_dora", language="es"))
    try:
        import pyopenjtalk  # noqa: F401
    except ImportError:
        with pytest.raises(UnsupportedLanguage):
            await kokoro_engine.validate(request(voice="jf_alpha", language="ja"))


async def test_disconnect_stops_the_remaining_segments(kokoro_engine):
    text = " ".join(f"This is sentence {i}." for i in range(40))
    before = kokoro_engine.stats()
    stream = kokoro_engine.synthesize(request(text=text, speed=4.0))
    async with contextlib.aclosing(stream):
        await stream.__anext__()
    for _ in range(600):  # the step in flight finishes first (seconds on a busy CPU)
        stats = kokoro_engine.stats()
        if stats["jobs_cancelled"] > before["jobs_cancelled"]:
            break
        await asyncio.sleep(0.05)
    assert stats["jobs_cancelled"] == before["jobs_cancelled"] + 1
    assert stats["items"] - before["items"] < 6  # of 10+ chunks, only those already in flight ran


async def test_warmup_and_voices(kokoro_engine):
    await kokoro_engine.warmup()
    assert {v.id for v in kokoro_engine.voices()} >= {"af_heart", "bm_george"}


async def test_a_failing_request_does_not_fail_its_batch(make_kokoro):
    engine = await make_kokoro(max_wait_ms=2000)
    forward = engine.batcher.forward
    real_front = forward.front

    def flaky(items):
        if any(item.speed == 3.0 for item in items):  # the marked request, alone or in a batch
            raise RuntimeError("boom")
        return real_front(items)

    forward.front = flaky
    bad = synthesize(engine, text="This one breaks.", speed=3.0)
    good = synthesize(engine, text="This one works.", seed=0)
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], InternalError)
    assert len(results[1]) == 1 and results[1][0].size > 0


async def test_chunks_carry_their_offset_within_the_utterance(kokoro_engine):
    chunks = [c async for c in kokoro_engine.synthesize(request(seed=1))]
    assert all(isinstance(c, PcmChunk) for c in chunks)
    assert [c.offset for c in chunks] == [0, chunks[0].samples.size]
