"""OpenAI-style POST /v1/audio/speech through the unmodified ``openai`` SDK, with the stand-in engine."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import av
import httpx
import openai
import pytest
import soundfile as sf

from server.app import create_app
from server.openai.protocol import is_openai_request
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app

CHUNKS, CHUNK_SAMPLES = 3, 4800  # the stand-in speaks 0.6 s at 24 kHz
SECONDS = CHUNKS * CHUNK_SAMPLES / 24000


@pytest.fixture(scope="module")
def server():
    engine = FakeEngine(chunks=CHUNKS, chunk_samples=CHUNK_SAMPLES)
    settings = Settings(openai_voices="alloy=alpha,nova=alpha")
    with serve_app(create_app(settings, engines={engine.model_id: engine})) as base:
        yield base, engine


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="sk-local", max_retries=0)


def decode(data: bytes) -> tuple[int, float]:
    """(sample rate, seconds) as FFmpeg reads the file."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.rate, samples / stream.rate


@pytest.mark.parametrize(
    "fmt, rate, slack",
    [
        ("mp3", 24000, 0.08),  # MP3 and AAC decoders add their codec's priming samples
        ("aac", 24000, 0.1),
        ("opus", 48000, 0.03),  # Opus always decodes at 48 kHz
        ("flac", 24000, 0.0),
        ("wav", 24000, 0.0),
    ],
)
def test_every_container_decodes_to_the_right_rate_and_length(client, server, fmt, rate, slack):
    response = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.", response_format=fmt)
    got_rate, seconds = decode(response.content)
    assert got_rate == rate and SECONDS - 0.001 <= seconds <= SECONDS + slack
    assert server[1].last_request.voice == "alpha" and server[1].last_request.model == "hexgrad/Kokoro-82M"
    if fmt in ("wav", "flac"):  # libsndfile reads both too
        audio, sf_rate = sf.read(io.BytesIO(response.content))
        assert sf_rate == 24000 and len(audio) == CHUNKS * CHUNK_SAMPLES


def test_default_is_mp3_and_pcm_is_raw_24khz_s16le(client):
    mp3 = client.audio.speech.create(model="gpt-4o-mini-tts", voice="nova", input="Hi.")
    assert mp3.response.headers["content-type"] == "audio/mpeg" and decode(mp3.content)[0] == 24000
    pcm = client.audio.speech.create(model="tts-1-hd", voice="alloy", input="Hi.", response_format="pcm")
    assert len(pcm.content) == 2 * CHUNKS * CHUNK_SAMPLES


def test_sse_events_carry_the_audio_then_usage(client):
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there.", response_format="pcm", stream_format="sse"
    )
    assert response.response.headers["content-type"] == "text/event-stream"
    events = [json.loads(line[len("data: ") :]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * CHUNKS + ["speech.audio.done"]
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(pcm) == 2 * CHUNKS * CHUNK_SAMPLES
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len("Hello there.") and usage["output_tokens"] == round(SECONDS * 50)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "wav"])  # flac is sent whole (see containers.py)
def test_streamed_bytes_arrive_before_synthesis_ends(fmt):
    engine = FakeEngine(chunks=4, chunk_samples=4800, delay_s=0.4)  # 0.8 s of audio over 1.6 s
    with serve_app(create_app(Settings(), engines={engine.model_id: engine})) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alpha", input="Streaming.", response_format=fmt
        ) as response:
            assert "content-length" not in response.headers  # chunked transfer
            pieces = response.iter_bytes()
            first = next(pieces)
            produced_then = engine.produced  # chunks synthesized when the first bytes arrived
            body = first + b"".join(pieces)
    assert first and produced_then < 4
    assert abs(decode(body)[1] - 0.8) < 0.1


def test_speed_is_native_where_the_engine_has_it_and_stretched_elsewhere(server, client):
    _, engine = server
    client.audio.speech.create(model="tts-1", voice="alloy", input="Fast.", speed=1.5, response_format="wav")
    assert engine.last_request.speed == 1.5  # the engine itself applies it (the stand-in ignores it)
    engine.native_speed = False
    try:
        wav = client.audio.speech.create(model="tts-1", voice="alloy", input="Fast.", speed=2.0, response_format="wav")
    finally:
        del engine.native_speed
    assert engine.last_request.speed == 1.0
    assert abs(decode(wav.content)[1] - SECONDS / 2) < 0.03


def test_instructions_are_accepted_and_voice_ids_work(client, server):
    client.audio.speech.create(model="tts-1", voice={"id": "alpha"}, input="Hi.", instructions="Cheerful.")
    assert server[1].last_request.voice == "alpha" and server[1].last_text == "Hi."  # ignored by Kokoro


def test_errors_are_in_openais_shape(client):
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")
    assert bad.value.body["code"] == "invalid_voice"
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9.0)
    assert bad.value.body["param"] == "speed"
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="whisper-9", voice="alloy", input="Hi.")


def test_models_list_has_the_aliases(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "hexgrad/Kokoro-82M" and {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(ids)
    assert client.models.retrieve("tts-1").owned_by == "hexgrad/Kokoro-82M"


def test_together_requests_keep_their_meaning(server):
    base, _ = server
    together = {"model": "hexgrad/Kokoro-82M", "input": "Hi.", "voice": "alpha"}
    # Together's default is WAV, for a plain client and even with OpenAI fields added to a Together body.
    plain = httpx.post(f"{base}/v1/audio/speech", json=together)
    assert plain.headers["content-type"] == "audio/wav"
    mixed = httpx.post(
        f"{base}/v1/audio/speech",
        json={**together, "stream": True, "response_format": "raw", "stream_format": "sse", "instructions": "x"},
    )
    first = json.loads(mixed.text.split("\n\n")[0][len("data: ") :])
    assert first["object"] == "audio.tts.chunk" and "b64" in first  # Together's stream, not OpenAI's
    invalid = httpx.post(f"{base}/v1/audio/speech", json={**together, "sample_rate": 24000, "response_format": "pcm"})
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "response_format"


def test_the_dialect_rule():
    aliases = frozenset({"tts-1"})
    body = {"model": "hexgrad/Kokoro-82M", "input": "Hi.", "voice": "af_heart"}
    assert not is_openai_request(body, "curl/8", aliases)
    assert is_openai_request(body, "OpenAI/Python 3.57.0", aliases)
    assert not is_openai_request({**body, "language": "en"}, "OpenAI/Python 3.57.0", aliases)
    assert is_openai_request({**body, "response_format": "opus"}, "", aliases)
    assert not is_openai_request({**body, "response_format": "mp3"}, "", aliases)
    assert not is_openai_request({**body, "response_format": "raw", "stream_format": "sse"}, "", aliases)
    assert is_openai_request({**body, "instructions": "calm"}, "", aliases)
    assert is_openai_request({**body, "model": "TTS-1"}, "", aliases)
    assert is_openai_request({**body, "voice": {"id": "v"}}, "", aliases)
    for extension in ("word_timestamps", "temperature", "max_tokens"):  # this server's Together extensions
        assert not is_openai_request({**body, extension: 1}, "OpenAI/Python 3.57.0", aliases)
    assert not is_openai_request(["not", "an", "object"], "OpenAI/Python", aliases)


def test_disconnecting_mid_stream_stops_synthesis():
    engine = FakeEngine(chunks=20, chunk_samples=2400, delay_s=0.1)
    with serve_app(create_app(Settings(), engines={engine.model_id: engine})) as base:
        body = {"model": "tts-1", "voice": "alpha", "input": "Long.", "response_format": "pcm"}
        with httpx.stream("POST", f"{base}/v1/audio/speech", json=body) as response:
            next(response.iter_bytes())
        done = threading.Event()
        for _ in range(50):
            if engine.closed_early:
                done.set()
                break
            time.sleep(0.05)
    assert done.is_set() and engine.produced < 20
