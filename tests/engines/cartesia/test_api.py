"""cartesia/sonic through the real HTTP server (create_app under uvicorn) against the fake Cartesia."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.audio import fix_wav_sizes
from tests.engines.cartesia.conftest import settings_for
from tests.engines.cartesia.fake_cartesia import FakeCartesia, audio_part, wait_for, wav_header
from tests.support.servers import serve_app

MODEL = "cartesia/sonic"


@contextlib.contextmanager
def tts_server(fake: FakeCartesia, **settings: Any) -> Iterator[str]:
    with serve_app(create_app(settings_for(fake, **settings))) as base:
        yield base


@pytest.fixture(scope="module")
def shared_base(cartesia_server: FakeCartesia) -> Iterator[str]:
    """One keyed server for the tests that only change the fake's behaviour."""
    # Short enough for the silence test to stay quick, long enough for a loaded machine's hiccups.
    with tts_server(cartesia_server, cartesia_read_timeout_s=2.0) as base:
        yield base


@pytest.fixture
def base(shared_base: str, fake: FakeCartesia) -> str:
    return shared_base  # ``fake`` has been reset for this test


def speech(base: str, **body: Any) -> httpx.Response:
    payload = {"model": MODEL, "input": "Hello.", "voice": "friendly sidekick", **body}
    return httpx.post(f"{base}/v1/audio/speech", json=payload, timeout=30)


def sse_payloads(text: str) -> list[Any]:
    events = [block for block in text.split("\n\n") if block.strip()]
    assert all(block.startswith("data: ") and "\nevent:" not in block for block in events)
    return [
        block[len("data: ") :] if block == "data: [DONE]" else json.loads(block[len("data: ") :]) for block in events
    ]


def test_stream_is_reframed_as_together_sse_in_both_dialects(base: str, fake: FakeCartesia) -> None:
    r = speech(base, stream=True, response_format="raw", response_encoding="pcm_s16le", sample_rate=24000)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    *chunks, done = sse_payloads(r.text)
    assert done == "[DONE]"
    assert len(chunks) == 3
    for i, chunk in enumerate(chunks):
        assert chunk["object"] == "audio.tts.chunk" and chunk["model"] == MODEL
        assert chunk["type"] == "conversation.item.audio_output.delta"
        assert chunk["item_id"] and chunk["delta"] == chunk["b64"]
        assert base64.b64decode(chunk["b64"]) == audio_part(i)
    (sent,) = fake.tts_requests()
    assert sent.path == "/tts/sse"
    assert sent.body["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}


def test_first_sse_event_reaches_the_client_while_cartesia_is_still_sending(base: str, fake: FakeCartesia) -> None:
    # The fake holds back parts 2-4 until released, so the first event cannot have waited for them.
    fake.behaviour.parts, fake.behaviour.hold_after_parts = 4, 1
    payload = {"model": MODEL, "input": "Hi.", "voice": "laidback woman", "stream": True, "response_format": "raw"}
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=payload, timeout=30) as r:
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert not fake.finished_sending.is_set()
        assert fake.parts_sent == 1
        assert base64.b64decode(json.loads(first[len("data: ") :])["b64"]) == audio_part(0)
        fake.release(3)
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]" and len(rest) == 4


def test_client_disconnect_closes_the_upstream_request(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.parts, fake.behaviour.delay_s = 50, 0.2
    payload = {"model": MODEL, "input": "Hi.", "voice": "polite man", "stream": True, "response_format": "raw"}
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=payload, timeout=30) as r:
        next(line for line in r.iter_lines() if line.startswith("data: "))
    assert wait_for(fake.client_disconnected, 10.0)
    assert not fake.finished_sending.is_set()


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("raw", "application/octet-stream")]
)
def test_files_pass_through_with_their_content_type(base: str, fake: FakeCartesia, fmt: str, content_type: str) -> None:
    r = speech(base, response_format=fmt, response_encoding="pcm_f32le", sample_rate=22050, bit_rate=96000)
    assert r.status_code == 200 and r.headers["content-type"] == content_type
    parts = b"".join(audio_part(i) for i in range(3))
    # A streamed WAV announces unknown sizes; the buffered response carries the real ones.
    assert r.content == (fix_wav_sizes(wav_header(22050, "pcm_s16le") + parts) if fmt == "wav" else parts)
    output = fake.tts_requests()[0].body["output_format"]
    assert output["container"] == fmt and output["sample_rate"] == 22050
    # response_encoding is raw's only (Together's spec): a wav is 16-bit, as with word timestamps.
    assert output.get("encoding") == {"raw": "pcm_f32le", "wav": "pcm_s16le", "mp3": None}[fmt]
    assert output.get("bit_rate") == (96000 if fmt == "mp3" else None)


def test_default_rate_is_44100_and_sonic_2_is_forwarded(base: str, fake: FakeCartesia) -> None:
    assert speech(base, model="cartesia/sonic-2", response_format="raw").status_code == 200
    body = fake.tts_requests()[0].body
    assert body["model_id"] == "sonic-2" and body["output_format"]["sample_rate"] == 44100


def test_unknown_voice_is_a_400_without_synthesis(base: str, fake: FakeCartesia) -> None:
    r = speech(base, voice="nobody at all")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "voice" and error["code"] == "invalid_voice"
    assert fake.tts_requests() == []


def test_unsupported_sample_rate_is_a_400(base: str, fake: FakeCartesia) -> None:
    r = speech(base, sample_rate=32000)
    assert r.status_code == 400 and r.json()["error"]["param"] == "sample_rate"
    assert fake.tts_requests() == []


def test_streaming_a_file_format_is_a_400_without_synthesis(base: str, fake: FakeCartesia) -> None:
    r = speech(base, stream=True, response_format="wav", sample_rate=44100)
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"
    assert fake.tts_requests() == []


def test_cartesia_400_keeps_its_message(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.tts_status = 422
    r = speech(base)
    assert r.status_code == 400 and "The fake was told to fail." in r.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_cartesia_5xx_is_a_502(base: str, fake: FakeCartesia, stream: bool) -> None:
    fake.behaviour.tts_status = 503
    r = speech(base, stream=stream, response_format="raw")
    assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error"


def test_cartesia_silence_is_a_504(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.hang_s = 5
    r = speech(base, stream=True, response_format="raw")
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


def test_cartesia_429_is_a_429_with_retry_after(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.tts_status, fake.behaviour.retry_after = 429, "12"
    r = speech(base)
    assert r.status_code == 429 and r.headers["retry-after"] == "12"
    assert r.json()["error"]["type"] == "rate_limit_exceeded"


def test_error_event_mid_stream_becomes_the_final_sse_error(base: str, fake: FakeCartesia) -> None:
    fake.behaviour.sse_error_after = 1
    r = speech(base, stream=True, response_format="raw")
    assert r.status_code == 200
    first, error, done = sse_payloads(r.text)
    assert base64.b64decode(first["b64"]) == audio_part(0)
    assert error["error"]["type"] == "upstream_error" and "mid-stream" in error["error"]["message"]
    assert done == "[DONE]"


def test_wrong_key_is_a_502_without_the_key(fake: FakeCartesia) -> None:
    with tts_server(fake, CARTESIA_API_KEY="sk_car_wrong_and_secret") as base:
        r = speech(base)
    assert r.status_code == 502 and "sk_car_wrong_and_secret" not in r.text
    assert "CARTESIA_API_KEY" in r.json()["error"]["message"]


def test_without_a_key_the_model_is_listed_unavailable(fake: FakeCartesia) -> None:
    with tts_server(fake, CARTESIA_API_KEY=None) as base:
        models = httpx.get(f"{base}/v1/models").json()
        r = speech(base)
        voices = httpx.get(f"{base}/v1/voices", params={"model": MODEL}).json()["data"]
    assert [(m["id"], m["available"]) for m in models] == [
        (MODEL, False),
        ("cartesia/sonic-2", False),
        ("cartesia/sonic-3", False),
    ]
    assert r.status_code == 503 and "CARTESIA_API_KEY" in r.json()["error"]["message"]
    assert fake.requests == []
    assert voices[0]["model"] == MODEL and len(voices[0]["voices"]) >= 100


def test_voices_lists_resolvable_names(base: str) -> None:
    (entry,) = httpx.get(f"{base}/v1/voices", params={"model": MODEL}).json()["data"]
    by_name = {v["name"]: v for v in entry["voices"]}
    for name in ("laidback woman", "polite man", "storyteller lady", "friendly sidekick"):
        assert by_name[name]["id"]
    assert by_name["polite man"]["gender"] == "male"
    assert httpx.get(f"{base}/v1/models").json()[0]["available"] is True
