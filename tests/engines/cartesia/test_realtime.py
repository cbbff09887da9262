"""cartesia/sonic for text arriving in pieces: continuations on Cartesia's websocket (the fake's)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets

from engines.base import EncodedPcm, OutputSpec, SessionEnd, SessionParams, WordTimings
from engines.cartesia.engine import CartesiaEngine
from engines.cartesia.websocket import ClientTooSlow
from engines.errors import UpstreamError
from server.app import create_app
from tests.engines.cartesia.conftest import settings_for
from tests.engines.cartesia.fake_cartesia import API_KEY, FakeCartesia
from tests.engines.cartesia.fake_websocket import SAMPLES_PER_CHAR
from tests.support.servers import serve_app

SIDEKICK = "e00d0e4c-a5c8-443f-a8a3-473eb9a62355"


def realtime_params(**overrides) -> SessionParams:
    values = dict(
        model="cartesia/sonic",
        voice="friendly sidekick",
        output=OutputSpec(format="raw", encoding="pcm_s16le", sample_rate=24000, stream=True),
        max_partial_chars=40,
    )
    values.update(overrides)
    return SessionParams(**values)


async def next_event(events, timeout: float = 5.0):
    return await asyncio.wait_for(anext(events), timeout)


async def collect(events) -> list:
    return [event async for event in events]


async def eventually(check, timeout: float = 2.0) -> None:
    """The fake records what it receives in its own thread: give it a moment."""
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()


async def test_sentences_reach_cartesia_as_they_arrive(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    session = await engine.open_session(realtime_params())
    events = session.events()
    for piece in ("Hello ", "there. ", "How are"):
        await session.feed(piece)
    # The finished sentence went upstream at once, as a continuation, and its audio is back.
    first = await next_event(events)
    assert isinstance(first, EncodedPcm) and first.offset == 0 and first.sample_rate == 24000
    (sent,) = fake.websocket.inputs()
    assert sent["transcript"] == "Hello there." and sent["continue"] is True
    assert sent["max_buffer_delay_ms"] == 0 and sent["voice"] == {"mode": "id", "id": SIDEKICK}
    assert sent["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}
    await session.feed(" you?")
    await session.commit()
    rest = await asyncio.wait_for(collect(events), 5)
    assert isinstance(rest[-1], SessionEnd)
    inputs = fake.websocket.inputs()
    # One context; the inputs join into the text, spaces included; the last one ends the context.
    assert {m["context_id"] for m in inputs} == {sent["context_id"]}
    assert "".join(m["transcript"] for m in inputs) == "Hello there. How are you?"
    assert [m["continue"] for m in inputs] == [True, False]
    audio = b"".join(e.data for e in [first, *rest] if isinstance(e, EncodedPcm))
    assert len(audio) == 2 * SAMPLES_PER_CHAR * len("Hello there.How are you?")
    handshake = fake.websocket.handshakes[-1]
    assert handshake["x-api-key"] == API_KEY and handshake["cartesia-version"] == "2026-03-01"
    assert engine.stats()["websocket_contexts"] == 1
    # Upstream latency counts on this path too: first text out -> first audio back, once per context.
    assert engine.stats()["upstream_latency_seconds"]["count"] == 1


async def test_a_refused_websocket_counts_as_an_upstream_error(make_engine, fake: FakeCartesia) -> None:
    engine = await make_engine(cartesia_version="1999-01-01")  # Cartesia refuses the handshake (the fake: 403)
    session = await engine.open_session(realtime_params())
    with pytest.raises(UpstreamError):
        await session.feed("Hello there. ")
    await session.close()
    assert engine.stats()["upstream_errors"] == 1 and engine.stats()["websocket_contexts"] == 0


async def test_clear_drops_text_not_yet_sent(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    session = await engine.open_session(realtime_params())
    events = session.events()
    await session.feed("Keep this. Drop this unfinished")
    await session.clear()
    await session.feed("Say this instead.")
    await session.commit()
    await asyncio.wait_for(collect(events), 5)
    inputs = fake.websocket.inputs()
    assert [(m["transcript"], m["continue"]) for m in inputs] == [("Keep this.", True), (" Say this instead.", False)]


async def test_partial_text_goes_at_max_partial_chars(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    session = await engine.open_session(realtime_params(max_partial_chars=12))
    await session.feed("one two three four five six")
    await eventually(lambda: len(fake.websocket.inputs()) == 2)
    assert [m["transcript"] for m in fake.websocket.inputs()] == ["one two", " three four"]
    await session.close()


async def test_closing_cancels_the_context(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    session = await engine.open_session(realtime_params())
    events = session.events()
    await session.feed("First sentence. ")
    await next_event(events)
    await session.close()
    await eventually(lambda: fake.websocket.cancels() == [fake.websocket.inputs()[0]["context_id"]])
    rest = await asyncio.wait_for(collect(events), 5)
    assert not any(isinstance(e, SessionEnd) for e in rest)  # a closed session just stops


async def test_word_timestamps_pass_through(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    session = await engine.open_session(realtime_params(word_timestamps=True))
    events = session.events()
    await session.feed("Hello world.")
    await session.commit()
    words = [e for e in await asyncio.wait_for(collect(events), 5) if isinstance(e, WordTimings)]
    assert [w.word for e in words for w in e.words] == ["Hello", "world."]
    assert fake.websocket.inputs()[0]["add_timestamps"] is True


async def test_a_pause_longer_than_cartesias_expiry_continues_in_a_new_context(
    engine: CartesiaEngine, fake: FakeCartesia
) -> None:
    fake.websocket.expire_s = 0.6  # the fake refuses inputs this long after a context's audio ended
    session = await engine.open_session(realtime_params(word_timestamps=True))
    events = session.events()
    await session.feed("First part. ")
    await next_event(events)
    await asyncio.sleep(0.8)
    await session.feed("Second part. ")
    await session.commit()
    rest = await asyncio.wait_for(collect(events), 5)
    assert isinstance(rest[-1], SessionEnd)
    contexts = [m["context_id"] for m in fake.websocket.inputs()]
    assert len(set(contexts)) == 2 and engine.stats()["websocket_contexts"] == 2
    # The second context's audio and words carry on from where the first stopped.
    second_words = [w for e in rest if isinstance(e, WordTimings) for w in e.words if w.word == "Second"]
    assert abs(second_words[0].start - len("First part.") * SAMPLES_PER_CHAR / 24000) < 1e-6


async def test_an_upstream_error_fails_the_session(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.websocket.fail_transcripts = {"Bad input."}
    session = await engine.open_session(realtime_params())
    events = session.events()
    await session.feed("Bad input. ")
    try:
        await next_event(events)
    except Exception as exc:
        assert getattr(exc, "code", "") == "invalid_request" and "Transcript rejected" in str(exc)
    else:
        raise AssertionError("expected the upstream error")
    await session.close()


def test_realtime_route_speaks_through_cartesias_websocket(fake: FakeCartesia) -> None:
    async def talk(base: str) -> list[dict]:
        url = base.replace("http", "ws") + "/v1/audio/speech/websocket?model=cartesia/sonic&voice=friendly%20sidekick"
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": "Hi there. "}))
            seen = [json.loads(await ws.recv()) for _ in range(2)]  # the ack, then audio before any commit
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": "Bye."}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            while seen[-1]["type"] != "conversation.item.audio_output.done":
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            return seen

    with serve_app(create_app(settings_for(fake))) as base:
        seen = asyncio.run(talk(base))
    assert seen[1]["type"] == "conversation.item.audio_output.delta"
    audio = b"".join(base64.b64decode(e["delta"]) for e in seen if e["type"].endswith("delta"))
    assert len(audio) == 2 * SAMPLES_PER_CHAR * len("Hi there.Bye.")
    assert "".join(m["transcript"] for m in fake.websocket.inputs()) == "Hi there. Bye."


async def test_a_client_that_stops_reading_is_cut_off_at_the_cap(make_engine, fake: FakeCartesia) -> None:
    """Two sessions share the engine's one websocket. The slow one never takes its audio: past the cap
    its context is cancelled upstream and it fails naming the cap; the other one finishes."""
    cap = 1 << 16
    engine = await make_engine(cartesia_max_buffered_bytes=cap)
    slow = await engine.open_session(realtime_params(max_partial_chars=400))
    fast = await engine.open_session(realtime_params())
    slow_events = slow.events()  # started only at the end: its client "stopped reading"
    await slow.feed("This sentence is spoken into a buffer nobody reads. " * 6)  # ~150 KB of audio
    await slow.commit()
    (context,) = slow._opened
    await eventually(lambda: context.id in fake.websocket.cancels())
    assert context.overflowed and context.buffered_bytes == 0  # what it held was dropped
    await fast.feed("Hello there. ")
    await fast.feed("Still here.")
    await fast.commit()
    fast_events = await asyncio.wait_for(collect(fast.events()), 10)
    audio = sum(len(e.data) for e in fast_events if isinstance(e, EncodedPcm))
    assert isinstance(fast_events[-1], SessionEnd) and audio == 2 * SAMPLES_PER_CHAR * len("Hello there.Still here.")
    with pytest.raises(ClientTooSlow, match="TTS_CARTESIA_MAX_BUFFERED_BYTES") as failed:
        await next_event(slow_events)
    assert str(cap) in failed.value.message
    await slow.close()
    await fast.close()


async def test_sessions_count_as_upstream_requests_once_text_goes_upstream(engine, fake: FakeCartesia) -> None:
    """The realtime route opens a session just to validate a client's parameters: that is no request."""
    validating = await engine.open_session(realtime_params())
    await validating.close()
    assert engine.stats()["requests"] == 0 and not fake.websocket.inputs()
    session = await engine.open_session(realtime_params())
    await session.feed("One. ")
    await session.feed("Two.")
    await session.commit()
    await collect(session.events())
    await session.close()
    assert engine.stats()["requests"] == 1
