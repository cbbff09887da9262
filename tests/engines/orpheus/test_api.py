"""Orpheus through HTTP: a real uvicorn server loading the tiny weights the way production does."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf

from engines.orpheus.settings import ORPHEUS_MODEL
from server.app import create_app
from tests.engines.orpheus.conftest import settings_for
from tests.support.servers import serve_app

FRAME = 2048
FRAMES = 5  # the test settings' orpheus_max_tokens=35


@pytest.fixture(scope="module")
def server(orpheus_dirs):
    # warmup on: readiness waits for one real synthesis, as in production
    app = create_app(settings_for(orpheus_dirs, warmup=True, max_batch_size=4))
    with serve_app(app) as base:
        yield base


def speech(base, **body):
    payload = {"model": ORPHEUS_MODEL, "input": "Hello there.", "voice": "tara", "seed": 1, **body}
    return httpx.post(f"{base}/v1/audio/speech", json=payload, timeout=120)


def test_wav(server):
    r = speech(server)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert rate == 24000 and audio.shape == (FRAMES * FRAME,)


def test_raw_encodings_carry_the_same_audio(server):
    f32 = np.frombuffer(speech(server, response_format="raw", response_encoding="pcm_f32le").content, "<f4")
    s16 = np.frombuffer(speech(server, response_format="raw", response_encoding="pcm_s16le").content, "<i2")
    assert f32.size == s16.size == FRAMES * FRAME
    assert np.abs(f32 - s16 / 32768.0).max() < 2e-4  # same seed, same audio, 16-bit rounding apart
    mulaw = speech(server, response_format="raw", response_encoding="pcm_mulaw").content
    assert len(mulaw) == FRAMES * FRAME
    # No response_encoding: 16-bit, as hosted Together answers Orpheus (raw and streamed alike).
    assert speech(server, response_format="raw").content == s16.tobytes()
    streamed = httpx.post(
        f"{server}/v1/audio/speech",
        json={"model": ORPHEUS_MODEL, "input": "Hello there.", "voice": "tara", "seed": 1, "stream": True}
        | {"response_format": "raw"},
        timeout=120,
    )
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert b"".join(base64.b64decode(e["b64"]) for e in events if "b64" in e) == s16.tobytes()


def test_per_request_sampling_overrides_and_alias(server):
    def audio(max_tokens: int = 14, **overrides) -> np.ndarray:
        r = speech(
            server,
            model="orpheus",
            response_format="raw",
            response_encoding="pcm_f32le",
            seed=5,
            max_tokens=max_tokens,
            **overrides,
        )
        assert r.status_code == 200
        samples = np.frombuffer(r.content, "<f4")
        assert samples.size == max_tokens // 7 * FRAME  # max_tokens=14: two frames
        return samples

    overrides = {"temperature": 0.9, "top_p": 0.9, "repetition_penalty": 1.2}
    changed = audio(**overrides)
    assert np.array_equal(changed, audio(**overrides))  # same overrides, same seed: the same audio
    assert not np.allclose(changed, audio())  # same seed without them: other audio
    # Each override reaches the sampler on its own. The penalty only touches codes already used in
    # a slot, so it needs a longer answer (and a clear step from the default 1.3) to show.
    default = audio(max_tokens=70)
    for name, value in {"temperature": 0.9, "top_p": 0.9, "repetition_penalty": 2.0}.items():
        assert not np.allclose(audio(max_tokens=70, **{name: value}), default), name


def test_sse_stream(server):
    r = speech(server, stream=True, response_format="raw", response_encoding="pcm_s16le", max_tokens=42)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    events = [line[len("data: ") :] for line in r.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2  # streamed: the first frame leaves before the rest are generated
    assert all(c["model"] == ORPHEUS_MODEL and c["object"] == "audio.tts.chunk" for c in chunks)
    pcm = b"".join(base64.b64decode(c["b64"]) for c in chunks)
    assert len(pcm) == 6 * FRAME * 2


def test_unknown_voice_is_400(server):
    r = speech(server, voice="af_heart")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_voice" and error["param"] == "voice" and "tara" in error["message"]


def test_non_english_is_400(server):
    r = speech(server, language="fr")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_language"


def test_unstable_repetition_penalty_is_400(server):
    r = speech(server, repetition_penalty=1.0)
    assert r.status_code == 400 and r.json()["error"]["param"] == "repetition_penalty"


def test_voices_endpoint_lists_the_catalog(server):
    r = httpx.get(f"{server}/v1/voices", params={"model": "orpheus"}, timeout=10)
    assert r.status_code == 200
    (entry,) = r.json()["data"]
    assert entry["model"] == ORPHEUS_MODEL
    assert [v["id"] for v in entry["voices"]] == ["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]


def test_concurrent_http_requests_are_batched(server):
    bodies = [{"seed": s, "response_format": "raw"} for s in range(50, 54)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda body: speech(server, **body), bodies))
    # No response_encoding: 16-bit PCM, as hosted Together answers Orpheus.
    assert all(r.status_code == 200 and len(r.content) == FRAMES * FRAME * 2 for r in results)
    stats = httpx.get(f"{server}/stats", timeout=10).json()[ORPHEUS_MODEL]
    assert stats["max_lm_batch_size_seen"] > 1
    assert stats["frames_invalid"] == 0


def test_openai_clients_get_instructions_as_tags_and_speed_by_time_stretch(server, monkeypatch):
    """Orpheus has no native speed: the OpenAI route stretches its audio; instructions become tags."""
    from engines.orpheus import scheduler

    prompted: list[str] = []  # the text each segment's prompt is built from (the server runs in-process)
    build = scheduler.prompt_ids
    monkeypatch.setattr(
        scheduler, "prompt_ids", lambda tok, voice, text: prompted.append(text) or build(tok, voice, text)
    )

    def openai_pcm(**fields) -> bytes:
        body = {"model": ORPHEUS_MODEL, "input": "Hello there.", "voice": "tara", "response_format": "pcm", **fields}
        r = httpx.post(f"{server}/v1/audio/speech", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return r.content

    normal = openai_pcm()
    assert len(normal) == 2 * FRAMES * FRAME  # OpenAI's pcm: 24 kHz s16le, every frame
    faster = openai_pcm(speed=2.0)
    assert abs(len(faster) / len(normal) - 0.5) < 0.05, (len(faster), len(normal))
    assert prompted == ["Hello there.", "Hello there."]
    assert len(openai_pcm(instructions="Say it with a laugh, then sigh.")) == len(normal)
    assert prompted[-1] == "<laugh> <sigh> Hello there."
