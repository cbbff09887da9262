"""Kokoro behind the HTTP API: concurrent SSE streams are batched from their first step."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from server.app import create_app
from tests.engines.kokoro.conftest import MODEL, kokoro_settings_for
from tests.support.servers import serve_app

TEXTS = ["First stream speaks.", "The second stream says a bit more.", "Third one.", "And a fourth voice, too."]


@pytest.fixture(scope="module")
def server(kokoro_dir):
    settings = kokoro_settings_for(kokoro_dir, models=[MODEL], max_wait_ms=2000, warmup=False)
    with serve_app(create_app(settings)) as base:
        yield base


def stream(base, i) -> bytes:
    body = {"model": MODEL, "input": TEXTS[i], "voice": "af_heart", "seed": i, "stream": True, "response_format": "raw"}
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=300) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return b"".join(base64.b64decode(json.loads(e)["b64"]) for e in events[:-1])


def test_concurrent_streams_share_their_first_step_and_equal_their_solo_runs(server):
    solo = [stream(server, i) for i in range(len(TEXTS))]
    with ThreadPoolExecutor(len(TEXTS)) as pool:
        together = list(pool.map(lambda i: stream(server, i), range(len(TEXTS))))
    stats = httpx.get(f"{server}/stats").json()[MODEL]
    assert max(int(size) for size in stats["first_step_batch_histogram"]) > 1
    assert max(int(size) for size in stats["front_batch_histogram"]) > 1
    for alone, batched in zip(solo, together):
        a, b = np.frombuffer(alone, "<i2"), np.frombuffer(batched, "<i2")  # s16le: the default encoding
        assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 4  # 1e-4 of full scale, rounded


def test_no_response_encoding_means_16_bit_raw_and_streamed(server):
    """As hosted Together answers Kokoro: s16le unless the client names another encoding."""

    def raw(**extra) -> bytes:
        body = {"model": MODEL, "input": TEXTS[2], "voice": "af_heart", "seed": 7, "response_format": "raw", **extra}
        r = httpx.post(f"{server}/v1/audio/speech", json=body, timeout=300)
        assert r.status_code == 200
        return r.content

    default, s16, f32 = raw(), raw(response_encoding="pcm_s16le"), raw(response_encoding="pcm_f32le")
    assert default == s16 and len(f32) == 2 * len(s16)
    floats = np.frombuffer(f32, "<f4")
    assert np.abs(np.frombuffer(default, "<i2") / 32768.0 - floats).max() < 1e-4
    body = {"model": MODEL, "input": TEXTS[2], "voice": "af_heart", "seed": 7, "stream": True, "response_format": "raw"}
    with httpx.stream("POST", f"{server}/v1/audio/speech", json=body, timeout=300) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert b"".join(base64.b64decode(e["b64"]) for e in events if "b64" in e) == default


def post(base, **fields) -> httpx.Response:
    body = {"model": MODEL, "input": "Hello there, big world.", "voice": "af_heart", "seed": 3, **fields}
    r = httpx.post(f"{base}/v1/audio/speech", json=body, timeout=300)
    assert r.status_code == 200
    return r


def test_alignment_word_on_sse_follows_the_audio(server):
    r = post(server, stream=True, response_format="raw", alignment="word")
    events = [json.loads(line[6:]) for line in r.text.split("\n\n") if line.startswith("data: {")]
    audio = b"".join(base64.b64decode(e["delta"]) for e in events if "delta" in e)
    timed = [e for e in events if e["type"] == "conversation.item.word_timestamps"]
    assert timed and all(set(e) == {"type", "item_id", "words", "start_seconds", "end_seconds"} for e in timed)
    words = [w for e in timed for w in e["words"]]
    starts = [s for e in timed for s in e["start_seconds"]]
    ends = [s for e in timed for s in e["end_seconds"]]
    assert words == ["Hello", "there", "big", "world"]  # in order, as written
    assert all(a < b for a, b in zip(starts, ends)) and all(b <= c for b, c in zip(ends, starts[1:]))
    duration = len(audio) / 2 / 24000
    # Covering the audio: speech starts after the leading boundary token and ends before the trailing one.
    assert 0 < starts[0] < 0.5 and duration - 0.5 < ends[-1] <= duration


def test_mulaw_is_one_byte_per_sample_and_decodes_as_pcm_mulaw(server):
    mulaw = post(server, response_format="mulaw").content
    assert mulaw == post(server, response_format="raw", response_encoding="pcm_mulaw").content
    s16 = np.frombuffer(post(server, response_format="raw", response_encoding="pcm_s16le").content, "<i2")
    assert len(mulaw) == s16.size  # byte length = samples
    decoded = mulaw_decode(np.frombuffer(mulaw, np.uint8))
    assert np.abs(decoded - s16.astype(np.int32)).max() <= 1024  # mu-law's step at full scale


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law -> 16-bit values (ITU-T reference expansion)."""
    codes = ~codes.astype(np.int32) & 0xFF
    magnitude = (((codes & 0x0F) << 3) + 0x84) << ((codes & 0x70) >> 4)
    return np.where(codes & 0x80, 0x84 - magnitude, magnitude - 0x84)
