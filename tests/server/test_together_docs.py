"""Every POST example of ../shared/reference/together-docs-2026.md, sent to the server as a client
following Together's documentation would: Kokoro (real architecture, random weights) and
cartesia/sonic (against the fake Cartesia). Event and body shapes are asserted as documented."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import httpx
import pytest
import soundfile as sf

from server.app import create_app
from tests.engines.cartesia.conftest import settings_for
from tests.engines.cartesia.fake_cartesia import FakeCartesia
from tests.engines.kokoro.conftest import MODEL as KOKORO
from tests.engines.kokoro.conftest import kokoro_settings_for
from tests.support.servers import serve_app

SONIC = "cartesia/sonic"
AUDIO_DELTA = {"type", "item_id", "delta"}  # {"type":"conversation.item.audio_output.delta","item_id":...,"delta":...}
WORDS = {"type", "item_id", "words", "start_seconds", "end_seconds"}


@pytest.fixture(scope="module")
def kokoro(kokoro_dir) -> Iterator[str]:
    settings = kokoro_settings_for(kokoro_dir, models=[KOKORO], warmup=False, max_wait_ms=0)
    with serve_app(create_app(settings)) as base:
        yield base


@pytest.fixture(scope="module")
def sonic() -> Iterator[tuple[str, FakeCartesia]]:
    fake = FakeCartesia()
    with serve_app(fake, wait_ready=False) as upstream:
        fake.base_url = upstream
        with serve_app(create_app(settings_for(fake))) as base:
            yield base, fake


def post(base: str, model: str, **fields) -> httpx.Response:
    voice = "af_heart" if model == KOKORO else "friendly sidekick"
    body = {"model": model, "input": "Hello world.", "voice": voice, "seed": 1, **fields}
    return httpx.post(f"{base}/v1/audio/speech", json=body, timeout=300)


def data_lines(r: httpx.Response) -> list[str]:
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    blocks = [b for b in r.text.split("\n\n") if b]
    assert all(b.startswith("data: ") and "\n" not in b for b in blocks)  # data: lines only, no event: lines
    return [b[len("data: ") :] for b in blocks]


def check_documented_stream(r: httpx.Response, *, words: bool) -> tuple[bytes, list[dict]]:
    """The stream as the docs show it: audio deltas, word events with alignment=word, then [DONE]."""
    *events, done = data_lines(r)
    assert done == "[DONE]"
    events = [json.loads(e) for e in events]
    audio = [e for e in events if e["type"] == "conversation.item.audio_output.delta"]
    timings = [e for e in events if e["type"] == "conversation.item.word_timestamps"]
    assert len(audio) + len(timings) == len(events) and audio
    item = r.headers["x-request-id"]
    for event in audio:  # the docs' fields (the spec's object/model/b64 ride along for the v1 SDK)
        assert AUDIO_DELTA <= set(event) and event["item_id"] == item and event["b64"] == event["delta"]
    for event in timings:
        assert set(event) == WORDS and event["item_id"] == item
        assert all(isinstance(w, str) for w in event["words"])
        assert len(event["words"]) == len(event["start_seconds"]) == len(event["end_seconds"])
    assert bool(timings) == words
    return b"".join(base64.b64decode(e["delta"]) for e in audio), timings


@pytest.mark.parametrize("target", ["kokoro", "sonic"])
def test_streaming_example_with_and_without_alignment(request, target):
    base = request.getfixturevalue(target)
    base, fake = base if isinstance(base, tuple) else (base, None)
    model = SONIC if fake else KOKORO
    if fake is not None:
        fake.reset()
        fake.behaviour.transcript_timestamps = True
    plain, _ = check_documented_stream(post(base, model, stream=True, response_format="raw"), words=False)
    aligned = post(base, model, stream=True, response_format="raw", alignment="word")
    audio, timings = check_documented_stream(aligned, words=True)
    assert [w for e in timings for w in e["words"]] == (["Hello", "world."] if fake else ["Hello", "world"])
    assert audio == plain  # alignment adds events, never changes the audio (same seed)


@pytest.mark.parametrize("fmt,content_type", [("mp3", "audio/mpeg"), ("wav", "audio/wav"), ("mulaw", None)])
def test_response_formats(kokoro, fmt, content_type):
    r = post(kokoro, KOKORO, response_format=fmt)
    assert r.status_code == 200
    if fmt == "mulaw":
        raw = post(kokoro, KOKORO, response_format="raw", response_encoding="pcm_s16le")
        assert r.headers["content-type"] == "application/octet-stream" and len(r.content) == len(raw.content) // 2
    else:
        assert r.headers["content-type"] == content_type and sf.info(io.BytesIO(r.content)).samplerate == 24000


def test_language_locales(kokoro, sonic):
    assert post(kokoro, KOKORO, language="en-us").status_code == 200
    assert post(kokoro, KOKORO, language="pt-br", voice="ef_dora", input="Olá.").status_code == 200
    base, fake = sonic
    fake.reset()
    assert post(base, SONIC, language="zh-hk", input="你好").status_code == 200
    assert fake.tts_requests()[0].body["language"] == "zh"


@pytest.mark.parametrize("segment", ["sentence", "immediate", "never"])
def test_segment(kokoro, segment):
    r = post(kokoro, KOKORO, segment=segment, response_format="raw", input="Well, hello world. Bye.")
    assert r.status_code == 200 and len(r.content) > 0


def test_extra_params_pronunciation_dict_changes_what_is_spoken(kokoro):
    entries = {"pronunciation_dict": ["omg/oh my god"]}
    with_dict = post(kokoro, KOKORO, input="omg", response_format="raw", extra_params=entries)
    without = post(kokoro, KOKORO, input="omg", response_format="raw")
    spelled_out = post(kokoro, KOKORO, input="oh my god", response_format="raw")
    assert with_dict.status_code == 200 and with_dict.content != without.content
    assert with_dict.content == spelled_out.content


def test_bit_rate(sonic):
    base, fake = sonic
    fake.reset()
    assert post(base, SONIC, response_format="mp3", bit_rate=64000).status_code == 200
    assert fake.tts_requests()[0].body["output_format"]["bit_rate"] == 64000
