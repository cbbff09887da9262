"""No buffering: audio reaches our consumer while Cartesia is still sending, and leaving stops it."""

from __future__ import annotations

import pytest

from engines.base import OutputSpec, SynthesisRequest
from engines.cartesia.engine import CartesiaEngine
from tests.engines.cartesia.fake_cartesia import FakeCartesia, audio_part, wait_for

PARTS = 4


def make_request(**output: object) -> SynthesisRequest:
    return SynthesisRequest(
        model="cartesia/sonic", text="Stream me.", voice="laidback woman", output=OutputSpec(**output)
    )


@pytest.mark.parametrize(
    "output",
    [
        {"format": "raw", "sample_rate": 44100, "stream": True},  # /tts/sse
        {"format": "raw", "sample_rate": 44100},  # /tts/bytes
        {"format": "mp3", "sample_rate": 44100},
    ],
    ids=["sse", "bytes-raw", "bytes-mp3"],
)
async def test_first_chunk_arrives_before_upstream_finishes(
    engine: CartesiaEngine, fake: FakeCartesia, output: dict
) -> None:
    # The fake sends one part, then holds the rest until we release them: no clock involved.
    fake.behaviour.parts, fake.behaviour.hold_after_parts = PARTS, 1
    received: list[bytes] = []
    async for chunk in engine.synthesize(make_request(**output)):
        assert chunk.data
        if not received:
            assert not fake.finished_sending.is_set()
            assert fake.parts_sent == 1  # the first part did not wait for the second
            fake.release(PARTS - 1)
        received.append(chunk.data)
    assert b"".join(received) == b"".join(audio_part(i) for i in range(PARTS))
    assert fake.parts_sent == PARTS and fake.finished_sending.is_set()


async def test_each_sse_event_is_its_own_chunk_as_it_is_sent(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    # Lock-step: the fake sends part i+1 only after we have received part i as its own chunk.
    fake.behaviour.parts, fake.behaviour.hold_after_parts = 3, 1
    seen = []
    async for chunk in engine.synthesize(make_request(format="raw", sample_rate=44100, stream=True)):
        seen.append(chunk.data)
        assert fake.parts_sent == len(seen)  # delivered as sent, not bunched at the end
        fake.release()
    assert seen == [audio_part(i) for i in range(3)]


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "bytes"])
async def test_closing_the_iterator_closes_the_upstream_request(
    engine: CartesiaEngine, fake: FakeCartesia, stream: bool
) -> None:
    fake.behaviour.parts, fake.behaviour.delay_s = 50, 0.2
    chunks = engine.synthesize(make_request(format="raw", sample_rate=44100, stream=stream))
    first = await anext(chunks)
    assert first.data == audio_part(0)
    await chunks.aclose()  # what the server does when its client disconnects
    assert wait_for(fake.client_disconnected, 5.0), "the fake never saw the proxy go away"
    assert not fake.finished_sending.is_set()


async def test_engine_keeps_working_after_an_abandoned_stream(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.parts, fake.behaviour.delay_s = 20, 0.1
    chunks = engine.synthesize(make_request(format="raw", sample_rate=44100, stream=True))
    await anext(chunks)
    await chunks.aclose()
    fake.behaviour.parts, fake.behaviour.delay_s = 2, 0.0
    data = [c.data async for c in engine.synthesize(make_request(format="raw", sample_rate=44100, stream=True))]
    assert data == [audio_part(0), audio_part(1)]
