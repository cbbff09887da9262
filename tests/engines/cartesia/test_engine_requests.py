"""What CartesiaEngine sends to Cartesia (as the fake recorded it) and what it hands back."""

from __future__ import annotations

import base64

import pytest

from engines.base import EncodedChunk, EncodedPcm, OutputSpec, SynthesisRequest, WordTimings
from engines.cartesia.engine import CartesiaEngine
from tests.engines.cartesia.fake_cartesia import API_KEY, FakeCartesia, audio_part, wav_header

SIDEKICK = "e00d0e4c-a5c8-443f-a8a3-473eb9a62355"


def make_request(model: str = "cartesia/sonic", voice: str = "friendly sidekick", **output: object) -> SynthesisRequest:
    return SynthesisRequest(model=model, text="Hello from the proxy.", voice=voice, output=OutputSpec(**output))


async def run(engine: CartesiaEngine, request: SynthesisRequest) -> list[bytes]:
    await engine.validate(request)
    chunks = []
    async for chunk in engine.synthesize(request):
        # Streams come over /tts/sse as raw PCM in the asked encoding; files pass through as they are.
        assert isinstance(chunk, EncodedPcm if request.output.stream else EncodedChunk)
        chunks.append(chunk.data)
    return chunks


def test_engine_contract_attributes(engine: CartesiaEngine) -> None:
    assert engine.sample_rate == 44100
    assert engine.hosted_ignores_output_options is False
    assert engine.available is True
    assert {
        "en",
        "de",
        "fr",
        "es",
        "hi",
        "it",
        "ja",
        "ko",
        "nl",
        "pl",
        "pt",
        "ru",
        "sv",
        "tr",
        "zh",
    } <= engine.languages


async def test_http2_is_used_when_h2_is_installed(make_engine) -> None:
    pytest.importorskip("h2")
    assert (await make_engine()).stats()["http2"] is True
    assert (await make_engine(cartesia_http2=False)).stats()["http2"] is False


async def test_headers_carry_bearer_key_and_pinned_version(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    await run(engine, make_request(format="wav", sample_rate=44100))
    (sent,) = fake.tts_requests()
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["cartesia-version"] == "2026-03-01"
    assert sent.headers["content-type"] == "application/json"


async def test_version_is_configurable(make_engine, fake: FakeCartesia) -> None:
    engine = await make_engine(cartesia_version="2025-04-16")
    await run(engine, make_request(format="raw", sample_rate=24000))
    assert fake.tts_requests()[0].headers["cartesia-version"] == "2025-04-16"


@pytest.mark.parametrize("encoding", ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"])
async def test_raw_each_encoding(engine: CartesiaEngine, fake: FakeCartesia, encoding: str) -> None:
    chunks = await run(engine, make_request(format="raw", encoding=encoding, sample_rate=24000))
    (sent,) = fake.tts_requests()
    assert sent.path == "/tts/bytes"
    assert sent.headers["accept"] == "audio/*"
    assert sent.body == {
        "model_id": "sonic-3",
        "transcript": "Hello from the proxy.",
        "voice": {"mode": "id", "id": SIDEKICK},
        "output_format": {"container": "raw", "encoding": encoding, "sample_rate": 24000},
        "language": "en",
    }
    assert b"".join(chunks) == b"".join(audio_part(i) for i in range(3))


async def test_wav_passes_cartesias_file_through(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    chunks = await run(engine, make_request(format="wav", encoding="pcm_s16le", sample_rate=16000))
    assert fake.tts_requests()[0].body["output_format"] == {
        "container": "wav",
        "encoding": "pcm_s16le",
        "sample_rate": 16000,
    }
    assert b"".join(chunks) == wav_header(16000, "pcm_s16le") + b"".join(audio_part(i) for i in range(3))


async def test_mp3_sends_bit_rate(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    await run(engine, make_request(format="mp3", sample_rate=48000, bit_rate=64000))
    assert fake.tts_requests()[0].body["output_format"] == {"container": "mp3", "sample_rate": 48000, "bit_rate": 64000}


async def test_default_sample_rate_is_44100(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    await run(engine, make_request(format="wav", sample_rate=None))
    assert fake.tts_requests()[0].body["output_format"]["sample_rate"] == 44100


async def test_stream_uses_sse_and_yields_decoded_audio(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    chunks = await run(engine, make_request(format="raw", encoding="pcm_f32le", sample_rate=44100, stream=True))
    (sent,) = fake.tts_requests()
    assert sent.path == "/tts/sse"
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.body["output_format"] == {"container": "raw", "encoding": "pcm_f32le", "sample_rate": 44100}
    assert chunks == [audio_part(i) for i in range(3)]  # one EncodedChunk per upstream event


async def test_sse_ignores_comments_and_other_event_types(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.sse_extra_events = True
    chunks = await run(engine, make_request(format="raw", sample_rate=44100, stream=True))
    assert chunks == [audio_part(i) for i in range(3)]


@pytest.mark.parametrize(
    ("model", "model_id"),
    [("cartesia/sonic", "sonic-3"), ("cartesia/sonic-2", "sonic-2"), ("cartesia/sonic-turbo", "sonic-turbo")],
)
async def test_model_names(engine: CartesiaEngine, fake: FakeCartesia, model: str, model_id: str) -> None:
    await run(engine, make_request(model=model, format="raw", sample_rate=24000))
    assert fake.tts_requests()[0].body["model_id"] == model_id


async def test_default_model_id_is_configurable(make_engine, fake: FakeCartesia) -> None:
    engine = await make_engine(cartesia_model_id="sonic-3-2026-01-12")
    await run(engine, make_request(format="raw", sample_rate=24000))
    assert fake.tts_requests()[0].body["model_id"] == "sonic-3-2026-01-12"


async def test_language_and_speed(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    request = make_request(format="raw", sample_rate=24000)
    request.language = "ja"
    request.speed = 0.8
    await run(engine, request)
    body = fake.tts_requests()[0].body
    assert body["language"] == "ja"
    assert body["generation_config"] == {"speed": 0.8}


async def test_input_text_is_sent_verbatim(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    request = make_request(format="raw", sample_rate=24000)
    request.text = 'Ünïcode — "quotes" <break time="1s"/> and\nnewlines.'
    await run(engine, request)
    assert fake.tts_requests()[0].body["transcript"] == request.text


async def test_missing_sample_rate_uses_the_engine_default(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    request = make_request(format="raw", sample_rate=None)
    await run(engine, request)
    assert fake.tts_requests()[0].body["output_format"]["sample_rate"] == 44100
    assert request.output.sample_rate is None  # the caller's request is left as it was


async def test_stats_have_every_counter_before_the_first_request(engine: CartesiaEngine) -> None:
    counters = ("requests", "stream_requests", "bytes_requests", "chunks", "bytes", "upstream_errors")
    assert {k: engine.stats().get(k) for k in counters} == dict.fromkeys(counters, 0)


async def test_many_requests_share_one_client(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    for _ in range(3):
        await run(engine, make_request(format="raw", sample_rate=24000))
    assert len(fake.tts_requests()) == 3
    assert engine.stats()["requests"] == 3
    assert engine.stats()["bytes"] == 3 * 3 * 64


async def test_sse_chunks_are_base64_decoded_exactly(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.part_size = 4097  # not a multiple of 3: base64 padding on every event
    chunks = await run(engine, make_request(format="raw", sample_rate=44100, stream=True))
    assert [base64.b64encode(c) for c in chunks] == [base64.b64encode(audio_part(i, 4097)) for i in range(3)]


async def test_word_timestamps_are_passed_through_from_cartesias_sse(
    engine: CartesiaEngine, fake: FakeCartesia
) -> None:
    fake.behaviour.sse_extra_events = True  # the fake sends a timestamps event before the first chunk
    request = make_request(format="wav", sample_rate=44100)
    request.word_timestamps = True
    session = await engine.open_session(request)
    await session.feed("Hello from ")
    await session.feed("the proxy.")
    await session.commit()
    events = [event async for event in session.events()]
    words = [w for e in events if isinstance(e, WordTimings) for w in e.words]
    assert [(w.word, w.start, w.end) for w in words] == [("hi", 0.0, 0.2)]
    audio = [e for e in events if isinstance(e, EncodedPcm)]
    assert audio and all(e.encoding == "pcm_s16le" and e.sample_rate == 44100 for e in audio)
    sent = fake.tts_requests()[-1]
    assert sent.path == "/tts/sse" and sent.body["add_timestamps"] is True
    assert sent.body["transcript"] == "Hello from the proxy."  # fed pieces, one upstream request at commit


async def test_clear_drops_text_fed_before_it(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    session = await engine.open_session(make_request(format="raw", sample_rate=44100))
    await session.feed("Forget this.")
    await session.clear()
    await session.feed("Say this.")
    await session.commit()
    assert [e async for e in session.events()]
    assert fake.tts_requests()[-1].body["transcript"] == "Say this."
