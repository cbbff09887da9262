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
