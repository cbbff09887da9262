"""POST /v1/audio/speech: formats, encodings, sample rates and SSE framing (stand-in engine)."""

import base64
import io
import json
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
import soxr

from server.audio.pcm import encode_pcm
from tests.support.fake_engine import RATE, FakeEngine, tone

MODEL = "hexgrad/Kokoro-82M"
FULL = tone(3 * 2400)  # what the stand-in engine produces, in three chunks


def speech(base, **body):
    payload = {"model": MODEL, "input": "Hello.", "voice": "alpha", **body}
    return httpx.post(f"{base}/v1/audio/speech", json=payload, timeout=30)


def test_wav_default(api):
    base, _ = api
    r = speech(base)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert rate == RATE and sf.info(io.BytesIO(r.content)).subtype == "PCM_16"
    np.testing.assert_allclose(audio, FULL, atol=1e-4)


@pytest.mark.parametrize("encoding", ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"])
def test_raw_in_every_encoding_is_exact(api, encoding):
    base, _ = api
    r = speech(base, response_format="raw", response_encoding=encoding)
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.content == encode_pcm(FULL, encoding)


def test_raw_and_streams_default_to_s16le_at_native_rate_as_hosted_together_does(api):
    base, _ = api
    r = speech(base, response_format="raw")
    assert r.content == encode_pcm(FULL, "pcm_s16le")
    streamed = speech(base, response_format="raw", stream=True)
    chunks = [json.loads(line[6:]) for line in streamed.text.split("\n\n") if line and "[DONE]" not in line]
    assert b"".join(base64.b64decode(c["b64"]) for c in chunks) == encode_pcm(FULL, "pcm_s16le")
    explicit = speech(base, response_format="raw", response_encoding="pcm_f32le")  # beyond hosted: honoured
    assert explicit.content == encode_pcm(FULL, "pcm_f32le")


def test_an_engine_keeps_its_own_default_encoding(fake_server):
    class SpecDefault(FakeEngine):
        default_encoding = "pcm_f32le"  # e.g. cartesia/sonic, where the spec's default holds

    with fake_server(SpecDefault()) as (base, _):
        assert speech(base, response_format="raw").content == encode_pcm(FULL, "pcm_f32le")


def test_hosted_compat_ignores_even_explicit_output_options(fake_server):
    with fake_server(hosted_compat=True) as (base, _):
        r = speech(base, response_format="raw", response_encoding="pcm_f32le", sample_rate=16000)
        assert r.content == encode_pcm(FULL, "pcm_s16le")


@pytest.mark.parametrize("ask", [{"alignment": "word"}, {"word_timestamps": True}])
def test_word_timestamps_as_sse_events_beside_the_audio(api, ask):
    base, _ = api
    r = speech(base, input="Hello big world.", response_format="raw", stream=True, **ask)
    events = [json.loads(line[6:]) for line in r.text.split("\n\n") if line and "[DONE]" not in line]
    words = [e for e in events if e.get("type") == "conversation.item.word_timestamps"]
    audio = [e for e in events if e.get("object") == "audio.tts.chunk"]
    assert words == [  # Together's shape exactly: three parallel arrays and the item
        {
            "type": "conversation.item.word_timestamps",
            "item_id": r.headers["x-request-id"],
            "words": ["Hello", "big", "world."],
            "start_seconds": [0.0, 0.1, 0.2],
            "end_seconds": [0.1, 0.2, 0.30000000000000004],
        }
    ]
    assert b"".join(base64.b64decode(c["b64"]) for c in audio) == encode_pcm(FULL, "pcm_s16le")


def test_no_alignment_no_word_events(api):
    base, _ = api
    r = speech(base, input="Hello big world.", response_format="raw", stream=True, alignment="none")
    assert "word_timestamps" not in r.text


@pytest.mark.parametrize("fmt", ["wav", "mp3", "raw"])
def test_word_timestamps_without_streaming_are_a_json_body_with_the_audio(api, fmt):
    base, _ = api
    r = speech(base, input="Hello big world.", response_format=fmt, alignment="word")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "audio.speech" and body["sample_rate"] == RATE
    assert [w["word"] for w in body["words"]] == ["Hello", "big", "world."]
    assert body["words"][1] == {"word": "big", "start": 0.1, "end": 0.2}
    audio = base64.b64decode(body["audio"])
    if fmt == "raw":
        assert audio == encode_pcm(FULL, "pcm_s16le") and body["encoding"] == "pcm_s16le"
    else:
        assert sf.info(io.BytesIO(audio)).samplerate == RATE


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_sample_rate_is_honoured_with_band_limited_resampling(api, rate):
    base, _ = api
    r = speech(base, response_format="raw", response_encoding="pcm_f32le", sample_rate=rate)
    got = np.frombuffer(r.content, "<f4")
    want = soxr.resample(FULL, RATE, rate, quality="HQ")
    assert abs(got.size - want.size) <= 1
    n = min(got.size, want.size)
    np.testing.assert_allclose(got[:n], want[:n], atol=1e-3)
    wav = speech(base, sample_rate=rate)
    assert sf.info(io.BytesIO(wav.content)).samplerate == rate


def test_mp3(api):
    base, _ = api
    r = speech(base, response_format="mp3", bit_rate=64000)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    audio, rate = sf.read(io.BytesIO(r.content))
    assert rate == RATE and audio.size > 0.8 * FULL.size


def parse_sse(text: str) -> list[str]:
    """Split an SSE body into its data payloads, checking the framing on the way."""
    events = text.split("\n\n")
    assert events[-1] == ""
    payloads = []
    for event in events[:-1]:
        lines = event.split("\n")
        assert len(lines) == 1 and lines[0].startswith("data: "), event  # no `event:` lines
        payloads.append(lines[0][len("data: ") :])
    return payloads


def test_stream_is_sse_with_both_chunk_dialects_and_done(api):
    base, _ = api
    r = speech(base, stream=True, response_format="raw", response_encoding="pcm_s16le")
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    payloads = parse_sse(r.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk["object"] == "audio.tts.chunk" and chunk["model"] == MODEL
        assert chunk["type"] == "conversation.item.audio_output.delta" and chunk["delta"] == chunk["b64"]
    assert len({c["item_id"] for c in chunks}) == 1
    audio = b"".join(base64.b64decode(c["b64"]) for c in chunks)
    assert audio == encode_pcm(FULL, "pcm_s16le")


def test_first_stream_chunk_leaves_before_synthesis_ends(fake_server):
    with fake_server(FakeEngine(chunks=3, delay_s=0.5)) as (base, _):
        started = time.monotonic()
        body = {"model": MODEL, "input": "x", "voice": "alpha", "stream": True, "response_format": "raw"}
        with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=30) as r:
            lines = r.iter_lines()
            first_line = next(lines)
            first_at = time.monotonic() - started
            rest = [line for line in lines if line]
        total = time.monotonic() - started
        assert rest[-1] == "data: [DONE]" and len(rest) == 3
        assert first_line.startswith("data: {")
        # Chunks come 0.5 s apart: the first must arrive about a second before the stream ends.
        assert total >= 1.4 and total - first_at >= 0.8


def test_request_fields_reach_the_engine(api):
    base, engine = api
    speech(base, language="fr", speed=1.5, seed=7, response_format="raw", response_encoding="pcm_alaw")
    req = engine.last_request
    assert (req.language, req.speed, req.seed, req.output.encoding) == ("fr", 1.5, 7, "pcm_alaw")
    assert req.output.sample_rate == RATE  # filled with the model's native rate


def test_hosted_compat_forces_24k_s16(fake_server):
    with fake_server(hosted_compat=True) as (base, _):
        r = speech(base, response_format="raw", response_encoding="pcm_f32le", sample_rate=44100)
        assert r.content == encode_pcm(FULL, "pcm_s16le")


def test_doubled_version_prefix_is_accepted(api):
    # together>=2 appends /v1 itself, so base_url=.../v1 yields /v1/v1/... paths.
    base, _ = api
    r = httpx.post(f"{base}/v1/v1/audio/speech", json={"model": MODEL, "input": "Hi", "voice": "alpha"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
