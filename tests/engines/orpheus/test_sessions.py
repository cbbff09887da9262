"""Orpheus through the session contract: text in pieces, clear, and no word timestamps."""

import re

import numpy as np
import pytest

from engines.base import PcmChunk, SessionEnd
from engines.errors import Unsupported
from server.errors import http_status
from tests.engines.orpheus.helpers import request

TEXT = "First, a short one. Then a second sentence follows here. And a third one ends it, finally."


async def speak_in_pieces(engine, pieces, **kw):
    session = await engine.open_session(request(seed=9, max_tokens=14, **kw))
    async with session:
        for piece in pieces:
            await session.feed(piece)
        await session.commit()
        events = [e async for e in session.events()]
    return session, events


async def test_pieces_give_the_same_segments_and_audio_as_the_whole_text(make_engine):
    engine = await make_engine(first_segment_chars=20)
    whole_session, whole = await speak_in_pieces(engine, [TEXT])
    piece_session, pieces = await speak_in_pieces(engine, re.findall(r"\S+\s*", TEXT))
    texts = [s.text for s in whole_session._request.segments]
    assert texts == [s.text for s in piece_session._request.segments] and len(texts) >= 2
    audio = [np.concatenate([e.samples for e in events if isinstance(e, PcmChunk)]) for events in (whole, pieces)]
    np.testing.assert_array_equal(audio[0], audio[1])  # same seeds per segment, whatever the arrival
    assert isinstance(whole[-1], SessionEnd)


async def test_clear_drops_text_not_yet_released(make_engine):
    engine = await make_engine(first_segment_chars=20)
    session = await engine.open_session(request(seed=3, max_tokens=14))
    async with session:
        await session.feed("Keep this sentence. Drop this unfinished")
        await session.clear()
        await session.feed(" and this ends.")
        await session.commit()
        [e async for e in session.events()]
    assert [s.text for s in session._request.segments] == ["Keep this sentence.", "and this ends."]


async def test_word_timestamps_are_refused_naming_the_model(orpheus_engine):
    params = request()
    params.word_timestamps = True
    with pytest.raises(Unsupported) as info:
        await orpheus_engine.open_session(params)
    assert http_status(info.value) == 400 and "orpheus" in info.value.message.lower()


async def segments_of(engine, text, **fields) -> list[str]:
    params = request(seed=9, max_tokens=14)
    for name, value in fields.items():  # SessionParams fields (request() takes sampling options)
        setattr(params, name, value)
    session = await engine.open_session(params)
    async with session:
        await session.feed(text)
        await session.commit()
        [e async for e in session.events()]
    return [s.text for s in session._request.segments]


@pytest.mark.parametrize(
    "segment,texts",
    [
        ("immediate", ["First,", "a short one. Then a second sentence follows here."]),
        ("never", ["First, a short one. Then a second sentence follows here."]),
    ],
)
async def test_segment_modes_and_pronunciations_shape_the_segments(make_engine, segment, texts):
    engine = await make_engine(first_segment_chars=20)
    assert (
        await segments_of(engine, "First, a short one. Then a second sentence follows here.", segment=segment) == texts
    )
    # What the model is prompted with: the dictionary's text (an /IPA/ entry stays as written).
    entries = (("OMG", "oh my god"), ("now", "/naʊ/"))
    assert await segments_of(engine, "Say omg now.", pronunciations=entries) == ["Say oh my god now."]


async def test_english_locales_are_english(orpheus_engine):
    session = await orpheus_engine.open_session(request(language="en-gb"))
    await session.close()
