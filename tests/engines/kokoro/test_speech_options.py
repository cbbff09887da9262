"""Kokoro and Together's newer request fields: pronunciation dictionaries (IPA included), English
locales picking the G2P, and the segment modes (real architecture, random weights)."""

import asyncio

import pytest

from engines.base import SessionParams, WordTimings

MODEL = "hexgrad/Kokoro-82M"


@pytest.fixture
def sent(kokoro_engine, monkeypatch):
    """Every phoneme chunk as it is queued for the model, one list each (a short segment is one chunk; a
    segment may be queued with the next one, its context)."""
    segments: list[list[str]] = []
    original = kokoro_engine._items

    def items(request, chunks, *args, **kwargs):
        segments.extend([c.phonemes] for c in chunks)
        return original(request, chunks, *args, **kwargs)

    monkeypatch.setattr(kokoro_engine, "_items", items)
    return segments


async def run(engine, text, **kw) -> list:
    params = SessionParams(model=MODEL, voice=kw.pop("voice", "af_heart"), seed=3, **kw)
    session = await engine.open_session(params)
    async with session:
        await session.feed(text)
        await session.commit()
        return [event async for event in session.events()]


async def g2p_only(engine, text, **kw) -> None:
    """Phonemize ``text`` as a session would, then cancel before much audio is made (the spy has it all)."""
    params = SessionParams(model=MODEL, voice=kw.pop("voice", "af_heart"), seed=3, **kw)
    session = await engine.open_session(params)
    async with session:
        await session.feed(text)
        await session.commit()
        while not session._request.input_done:  # every segment phonemized and queued
            await asyncio.sleep(0.01)


def phonemes(sent) -> str:
    return " ".join(p for segment in sent for p in segment)


async def test_an_ipa_replacement_changes_the_phonemes_sent_to_the_model(kokoro_engine, sent):
    await g2p_only(kokoro_engine, "Say tomato now.")
    plain = phonemes(sent)
    sent.clear()
    await g2p_only(kokoro_engine, "Say Tomato now.", pronunciations=(("tomato", "/təmˈɑːtQ/"),))
    spoken = phonemes(sent)
    assert "təmˈATO" in plain and "təmˈATO" not in spoken
    assert spoken == plain.replace("təmˈATO", "təmˈɑːtQ")  # the rest of the sentence is untouched


async def test_a_text_replacement_is_spoken_as_that_text(kokoro_engine, sent):
    await g2p_only(kokoro_engine, "I said oh my god today.")
    expected = phonemes(sent)
    sent.clear()
    await g2p_only(kokoro_engine, "I said OMG today.", pronunciations=(("omg", "oh my god"),))
    assert phonemes(sent) == expected
    sent.clear()
    await g2p_only(kokoro_engine, "I said omgosh today.", pronunciations=(("omg", "oh my god"),))
    assert "ɡɑd" not in phonemes(sent)  # whole words only


async def test_word_timestamps_name_the_inputs_words_after_replacement(kokoro_engine):
    entries = (("omg", "oh my god"), ("tomato", "/təmˈɑːtQ/"))
    events = await run(kokoro_engine, "So OMG, tomato.", pronunciations=entries, word_timestamps=True)
    words = [w for e in events if isinstance(e, WordTimings) for w in e.words]
    assert [w.word for w in words] == ["So", "OMG", "tomato"]
    plain = await run(kokoro_engine, "So oh my god, tomato.", word_timestamps=True)
    plain_words = [w for e in plain if isinstance(e, WordTimings) for w in e.words]
    omg = words[1]
    assert (omg.start, omg.end) == (plain_words[1].start, plain_words[3].end)  # "oh" to "god", as one word


@pytest.mark.parametrize(
    "language,voice,expected", [("en-gb", "af_heart", "təmˈɑːtQ"), ("en-us", "bm_george", "təmˈATO")]
)
async def test_english_locales_pick_american_or_british_g2p_whatever_the_voice(
    kokoro_engine, sent, language, voice, expected
):
    await g2p_only(kokoro_engine, "A tomato.", language=language, voice=voice)
    assert expected in phonemes(sent)


async def test_other_locales_speak_their_language(kokoro_engine, sent):
    await g2p_only(kokoro_engine, "Hola amigo.", language="es-mx", voice="ef_dora")
    spanish = phonemes(sent)
    sent.clear()
    await g2p_only(kokoro_engine, "Hola amigo.", language="es", voice="ef_dora")
    assert phonemes(sent) == spanish


TEXT = "Well, here we go again. The quick brown fox jumps over the lazy dog and keeps on running."


# The test engine: first segment <= 60 characters, later ones <= 200.
@pytest.mark.parametrize("segment,count", [("immediate", 2), ("sentence", 2), ("never", 1)])
async def test_segment_modes_cut_the_text_into_their_segments(kokoro_engine, sent, segment, count):
    await g2p_only(kokoro_engine, TEXT, segment=segment)
    assert len(sent) == count


async def test_immediate_sends_the_first_clause_alone_for_earlier_first_audio(kokoro_engine, sent):
    await g2p_only(kokoro_engine, TEXT, segment="immediate")
    immediate = [phonemes([s]) for s in sent]
    sent.clear()
    await g2p_only(kokoro_engine, TEXT, segment="sentence")
    sentence = [phonemes([s]) for s in sent]
    sent.clear()
    await g2p_only(kokoro_engine, TEXT, segment="never")
    assert immediate[0].rstrip(",") + "," == immediate[0] and len(immediate[0]) < len(sentence[0])
    assert phonemes(sent).startswith(immediate[0])  # never: one utterance from the first word to the last
