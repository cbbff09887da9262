"""No buffering: audio reaches our consumer while Cartesia is still sending, and leaving stops it."""

from __future__ import annotations

import time

import pytest

from engines.base import OutputSpec, SynthesisRequest
from engines.cartesia.engine import CartesiaEngine
from tests.engines.cartesia.fake_cartesia import FakeCartesia, audio_part, wait_for

DELAY_S = 0.4
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
    fake.behaviour.parts, fake.behaviour.delay_s = PARTS, DELAY_S
    started = time.monotonic()
    arrivals: list[float] = []
    finished_when_first_arrived = None
    async for chunk in engine.synthesize(make_request(**output)):
        if not arrivals:
            finished_when_first_arrived = fake.finished_sending.is_set()
        arrivals.append(time.monotonic() - started)
        assert chunk.data
    assert finished_when_first_arrived is False
    assert arrivals[0] < DELAY_S  # the first part did not wait for the second
    assert arrivals[-1] >= (PARTS - 1) * DELAY_S * 0.9  # and the whole clip took its time
    assert fake.finished_sending.is_set()


async def test_each_sse_event_is_its_own_chunk_in_time(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.parts, fake.behaviour.delay_s = 3, 0.3
    started = time.monotonic()
    seen = []
    async for chunk in engine.synthesize(make_request(format="raw", sample_rate=44100, stream=True)):
        seen.append((chunk.data, time.monotonic() - started))
    assert [data for data, _ in seen] == [audio_part(i) for i in range(3)]
    gaps = [b - a for (_, a), (_, b) in zip(seen, seen[1:], strict=False)]
    assert all(gap > 0.2 for gap in gaps)  # delivered as sent, not bunched at the end


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
