"""Kokoro (random full-size weights) behind the real server process, over raw HTTP."""

import base64
import concurrent.futures
import io
import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest
import soundfile as sf

MODEL = "hexgrad/Kokoro-82M"


def post(base, **body):
    return httpx.post(
        f"{base}/v1/audio/speech", json={"model": MODEL, "voice": "af_heart", "input": "Hi there.", **body}, timeout=120
    )


@pytest.mark.parametrize(
    "fmt,encoding,rate,width",
    [
        ("raw", "pcm_f32le", 24000, 4),
        ("raw", "pcm_s16le", 16000, 2),
        ("raw", "pcm_mulaw", 8000, 1),
        ("raw", "pcm_alaw", 8000, 1),
    ],
)
def test_raw_formats(kokoro_server, fmt, encoding, rate, width):
    r = post(kokoro_server, response_format=fmt, response_encoding=encoding, sample_rate=rate, seed=1)
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert len(r.content) % width == 0
    reference = post(kokoro_server, response_format="wav", sample_rate=rate, seed=1)
    expected_samples = sf.info(io.BytesIO(reference.content)).frames
    assert abs(len(r.content) // width - expected_samples) <= 2


def test_wav_and_mp3(kokoro_server):
    wav = post(kokoro_server, seed=0)
    assert wav.headers["content-type"] == "audio/wav" and sf.info(io.BytesIO(wav.content)).samplerate == 24000
    mp3 = post(kokoro_server, response_format="mp3", sample_rate=44100, bit_rate=96000)
    assert mp3.headers["content-type"] == "audio/mpeg" and sf.info(io.BytesIO(mp3.content)).samplerate == 44100


def test_sse_stream_matches_the_non_streamed_audio(kokoro_server):
    text = "One sentence here. And a second one."
    streamed = post(
        kokoro_server, input=text, stream=True, response_format="raw", response_encoding="pcm_s16le", seed=5
    )
    events = [e[len("data: ") :] for e in streamed.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    audio = b"".join(base64.b64decode(json.loads(e)["b64"]) for e in events[:-1])
    whole = post(kokoro_server, input=text, response_format="raw", response_encoding="pcm_s16le", seed=5)
    assert audio == whole.content and len(events) == 3


def test_voice_mix_and_unknown_voice(kokoro_server):
    assert post(kokoro_server, voice="af_bella(2)+af_heart(1)").status_code == 200
    r = post(kokoro_server, voice="af_heart+nobody")
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice"


def test_overload_answers_429_with_retry_after(kokoro_server):
    text = " ".join(["This request keeps the worker busy for a while."] * 3)

    def one(_):
        return post(kokoro_server, input=text, speed=2.0)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(one, range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 429 in statuses, statuses
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"


def test_stats_count_requests_and_audio(kokoro_server):
    # Batching across concurrent requests is tested (alone, deterministically) in tests/engines/kokoro/test_api.py.
    assert post(kokoro_server, input="Counting this one.", seed=1).status_code == 200
    stats = httpx.get(f"{kokoro_server}/stats").json()[MODEL]
    assert stats["status"] == "ready" and stats["jobs_completed"] >= 1
    assert stats["audio_seconds"] > 0 and stats["synthesis_seconds"] > 0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(kokoro_server, tmp_path):
    out = tmp_path / "speech.wav"
    body = json.dumps({"model": MODEL, "input": "Hello from curl.", "voice": "af_heart"})
    subprocess.run(
        [
            "curl",
            "-sS",
            "-f",
            "-X",
            "POST",
            f"{kokoro_server}/v1/audio/speech",
            "-H",
            "Authorization: Bearer x",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            "--output",
            str(out),
        ],
        check=True,
        timeout=120,
    )
    audio, rate = sf.read(out)
    assert rate == 24000 and np.abs(audio).max() > 0
