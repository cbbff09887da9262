"""cartesia/sonic's websocket session with Together's segment modes and a pronunciation dictionary."""

from __future__ import annotations

import asyncio

from engines.base import WordTimings
from engines.cartesia.engine import CartesiaEngine
from tests.engines.cartesia.fake_cartesia import FakeCartesia
from tests.engines.cartesia.test_realtime import collect, eventually, realtime_params


def transcripts(fake: FakeCartesia) -> list[str]:
    return [m["transcript"] for m in fake.websocket.inputs()]


async def test_immediate_sends_every_piece_up_to_its_last_word_boundary(engine: CartesiaEngine, fake: FakeCartesia):
    session = await engine.open_session(realtime_params(segment="immediate"))
    events = session.events()
    await session.feed("Hello")
    await session.feed(" there my")  # no sentence end anywhere: still spoken at once
    await eventually(lambda: transcripts(fake) == ["Hello there"])
    await session.feed(" friend")
    await eventually(lambda: transcripts(fake) == ["Hello there", " my"])
    await session.commit()
    await asyncio.wait_for(collect(events), 5)
    assert transcripts(fake) == ["Hello there", " my", " friend"]


async def test_never_sends_nothing_before_the_commit(engine: CartesiaEngine, fake: FakeCartesia):
    session = await engine.open_session(realtime_params(segment="never"))
    events = session.events()
    await session.feed("One sentence. And another one, longer than max_partial_chars allows. ")
    await asyncio.sleep(0.2)
    assert transcripts(fake) == []
    await session.commit()
    await asyncio.wait_for(collect(events), 5)
    assert transcripts(fake) == ["One sentence. And another one, longer than max_partial_chars allows."]


async def test_pronunciations_are_sent_and_the_words_named_as_written(engine: CartesiaEngine, fake: FakeCartesia):
    params = realtime_params(word_timestamps=True, pronunciations=(("omg", "oh my god"),))
    session = await engine.open_session(params)
    events = session.events()
    await session.feed("I said OMG. ")
    await session.feed("Then omg again.")
    await session.commit()
    timed = [w for e in await asyncio.wait_for(collect(events), 5) if isinstance(e, WordTimings) for w in e.words]
    assert transcripts(fake) == ["I said oh my god.", " Then oh my god again."]
    assert [w.word for w in timed] == ["I", "said", "OMG", "Then", "omg", "again."]
    assert all(a.end <= b.start + 1e-9 for a, b in zip(timed, timed[1:]))
