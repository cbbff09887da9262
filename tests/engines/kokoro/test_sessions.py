"""Kokoro through the session contract: text fed in pieces, clear, cancellation, word timestamps."""

import asyncio
import re

import numpy as np
import pytest

from engines.base import EncodedPcm, PcmChunk, SessionEnd, SessionParams, WordTimings
from engines.errors import Unsupported
from engines.kokoro.timestamps import SAMPLE_RATE

MODEL = "hexgrad/Kokoro-82M"
TEXT = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks struck."
# The random test model's duration head is forced to sigmoid 0.08 x 50 bins = 4 frames for every token.
FRAMES_PER_TOKEN = 4
SECONDS_PER_FRAME = 600 / SAMPLE_RATE


def params(**kw) -> SessionParams:
    return SessionParams(model=MODEL, voice=kw.pop("voice", "af_heart"), **kw)


async def run(engine, pieces, **kw) -> list:
    session = await engine.open_session(params(**kw))
    async with session:
        for piece in pieces:
            await session.feed(piece)
        await session.commit()
        return [event async for event in session.events()]


def audio_of(events) -> np.ndarray:
    return np.concatenate([e.samples for e in events if isinstance(e, PcmChunk)])


async def test_pieces_give_the_same_audio_as_the_whole_text(kokoro_engine):
    whole = await run(kokoro_engine, [TEXT], seed=5)
    words = re.findall(r"\S+\s*", TEXT)
    by_word = await run(kokoro_engine, words, seed=5)
    by_chars = await run(kokoro_engine, [TEXT[i : i + 7] for i in range(0, len(TEXT), 7)], seed=5)
    np.testing.assert_array_equal(audio_of(whole), audio_of(by_word))
    np.testing.assert_array_equal(audio_of(whole), audio_of(by_chars))
    assert isinstance(whole[-1], SessionEnd)


async def test_audio_flows_before_the_input_is_committed(kokoro_engine):
    session = await kokoro_engine.open_session(params(seed=1))
    async with session:
        events = session.events()
        await session.feed("First sentence is here. And the second one")
        first = await asyncio.wait_for(events.__anext__(), timeout=120)  # nothing committed yet
        assert isinstance(first, PcmChunk) and first.offset == 0
        await session.commit()
        rest = [e async for e in events]
    assert any(isinstance(e, PcmChunk) and e.offset > 0 for e in rest)


async def test_clear_drops_buffered_text(kokoro_engine):
    expected = audio_of(await run(kokoro_engine, ["Hello there."], seed=2))
    session = await kokoro_engine.open_session(params(seed=2))
    async with session:
        await session.feed("Hello there.")
        await session.feed(" This unfinished sentence is dropped")
        await session.clear()
        await session.commit()
        got = audio_of([e async for e in session.events()])
    np.testing.assert_array_equal(got, expected)


async def test_closing_a_session_cancels_its_work(kokoro_engine):
    before = kokoro_engine.stats()
    session = await kokoro_engine.open_session(params(speed=4.0))
    events = session.events()
    await session.feed(" ".join(f"This is sentence number {i}." for i in range(30)))
    await session.commit()
    assert isinstance(await events.__anext__(), PcmChunk)
    await session.close()
    remaining = [e async for e in events]  # ends once the worker drops the job
    after = kokoro_engine.stats()
    assert after["jobs_cancelled"] == before["jobs_cancelled"] + 1
    assert after["items"] - before["items"] < 10 and not any(isinstance(e, SessionEnd) for e in remaining)


# -- word timestamps ----------------------------------------------------------------------------
def phoneme_ids(engine, text: str) -> list[str]:
    """The words as misaki tokenises them, with the number of model input ids each word has."""
    from engines.kokoro.g2p import Phonemizer

    vocab = engine._model.vocab
    out = []
    for chunk in Phonemizer(MODEL).chunks(text, "a"):
        for token in chunk.tokens:
            if any(c.isalnum() for c in token.text):
                out.append((token.text, sum(c in vocab for c in token.phonemes)))
    return out


async def timed_words(engine, text, **kw):
    events = await run(engine, [text], word_timestamps=True, **kw)
    words = [w for e in events if isinstance(e, WordTimings) for w in e.words]
    chunks = [e for e in events if isinstance(e, PcmChunk | EncodedPcm)]
    return words, chunks


@pytest.mark.parametrize("speed", [1.0, 2.0])
async def test_word_times_match_the_predicted_durations_exactly(kokoro_engine, speed):
    text = "Hello big world. The cat sat, on the mat!"
    words, chunks = await timed_words(kokoro_engine, text, speed=speed)
    expected = phoneme_ids(kokoro_engine, text)
    assert [w.word for w in words] == [word for word, _ in expected]  # every word once, in order
    frames = round(FRAMES_PER_TOKEN / speed)
    for word, (_, ids) in zip(words, expected):
        assert word.end - word.start == pytest.approx(ids * frames * SECONDS_PER_FRAME, abs=1e-4)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(a.end <= b.start for a, b in zip(words, words[1:]))
    assert words[0].start == pytest.approx(frames * SECONDS_PER_FRAME)  # after the boundary token
    total = sum(c.samples.size for c in chunks) / SAMPLE_RATE
    assert words[-1].end < total


@pytest.mark.parametrize("context", [False, True])
async def test_word_times_stay_correct_across_segments(make_kokoro, context):
    engine = await make_kokoro(kokoro_segment_context=context)
    text = "Short first segment here. " + "This is the second segment and it goes on for a while with more words."
    words, chunks = await timed_words(engine, text, seed=1)
    assert len(chunks) >= 2
    assert [w.word for w in words] == [word for word, _ in phoneme_ids(engine, text)]
    second_start = chunks[1].offset / SAMPLE_RATE  # where the second segment's audio begins
    first_of_second = next(w for w in words if w.start >= second_start)
    assert first_of_second.word == "This"
    assert chunks[1].offset == chunks[0].samples.size
    if not context:
        # The second chunk's leading boundary frames are trimmed at the join (joins.py): its first word starts it.
        assert first_of_second.start == pytest.approx(second_start, abs=1e-4)
    else:
        # With context it leads with the space between the sentences, the pause one utterance has there
        # (a few frames of 25 ms), then its first word; the first chunk's last word ended before the join.
        pause = first_of_second.start - second_start
        assert 0.02 <= pause <= 0.5, pause
        last_of_first = max((w for w in words if w.end <= second_start + 1e-4), key=lambda w: w.end)
        assert last_of_first.word == "here"


async def test_word_times_with_resampling_on_the_device(make_kokoro):
    # The CUDA path, forced on the CPU; each chunk alone, so the second one's first word starts its audio.
    engine = await make_kokoro(kokoro_device_pcm="on", kokoro_segment_context=False)
    from engines.base import OutputSpec

    output = OutputSpec(format="raw", encoding="pcm_s16le", sample_rate=8000)
    text = "Short first segment here. This is the second segment with a few more words."
    words, chunks = await timed_words(engine, text, output=output, seed=1)
    assert all(isinstance(c, EncodedPcm) and c.sample_rate == 8000 for c in chunks)
    second_start = chunks[1].offset / 8000
    first_of_second = next(w for w in words if w.word == "This")
    assert first_of_second.start == pytest.approx(second_start, abs=2 / 8000)  # no boundary frames at the join
    total = sum(len(c.data) // 2 for c in chunks) / 8000
    assert words[-1].end <= total


async def test_word_timestamps_are_english_only(kokoro_engine):
    with pytest.raises(Unsupported):
        await kokoro_engine.open_session(params(voice="ef_dora", language="es", word_timestamps=True))
