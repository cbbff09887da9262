"""A bounded soak of the real server process: mixed traffic for minutes, resident memory sampled.

Marked ``soak`` (deselected from the main run; CI runs it as its own step, ``TTS_SOAK_S`` seconds,
150 by default). Traffic: WAV, MP3, SSE, OpenAI MP3, word timestamps, realtime websockets, clients
that drop mid-stream, slow readers and bad requests, three clients each taking every kind in turn. Pass:
each request gets its kind's status (400 for the bad ones, 200 and audio for the rest), each kind
completes at least ``MIN_PER_KIND`` times, the second half's
peak resident memory within ``GROWTH_BOUND_MB`` of the first half's, the idle server afterwards within
``IDLE_BOUND_MB`` of where it started, and ~0 CPU when idle.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import random
import threading
import time

import httpx
import psutil
import pytest

from tests.reliability.helpers import MODEL
from tests.reliability.test_shutdown import cli_server
from tests.support.realtime import append, commit, connect, recv, until

SOAK_S = float(os.environ.get("TTS_SOAK_S", "150"))
GROWTH_BOUND_MB = 150  # second half's peak over the first half's: traffic must not ratchet memory up
IDLE_BOUND_MB = 400  # idle afterwards over the start: caches (G2P, voices, allocator pools) may stay
TEXTS = ["Hello there.", "A short sentence for the soak.", "Numbers like 42 and 1999 are spoken too.", "Fine."]

pytestmark = pytest.mark.soak


#: Speech requests by kind, and the status each must get; the realtime client is a kind of its own.
EXPECTED = {"wav": 200, "mp3": 200, "sse": 200, "openai": 200, "words": 200, "drop": 200, "slow": 200, "bad": 400}
#: Completed requests each kind must reach in the soak (a stalled server or a dead client thread fails it).
MIN_PER_KIND = max(2, int(SOAK_S // 50))


def _speech(base: str, kind: str, rng: random.Random) -> int:
    body = {"model": MODEL, "input": rng.choice(TEXTS), "voice": "af_heart", "seed": rng.randrange(1000)}
    url = f"{base}/v1/audio/speech"
    if kind == "mp3":
        return httpx.post(url, json={**body, "response_format": "mp3"}, timeout=120).status_code
    if kind == "openai":
        # OpenAI's model name with one of the test model's voices (it has no af_alloy for "alloy" to map to).
        return httpx.post(url, json={**body, "model": "tts-1"}, timeout=120).status_code
    if kind == "words":
        return httpx.post(url, json={**body, "word_timestamps": True}, timeout=120).status_code
    if kind == "bad":
        return httpx.post(url, json={**body, "voice": "af_heart(1000)"}, timeout=30).status_code
    if kind in ("sse", "drop", "slow"):
        with httpx.stream("POST", url, json={**body, "stream": True, "response_format": "raw"}, timeout=120) as r:
            for line in r.iter_lines():
                if kind == "drop" and line.startswith("data: "):
                    break
                if kind == "slow":
                    time.sleep(0.2)
                if line.startswith("data: {") and '"error"' in line:
                    return 500  # an error after the status line went out
            return r.status_code
    return httpx.post(url, json=body, timeout=120).status_code


async def _realtime(base: str, rng: random.Random) -> str:
    """``done`` when the item's audio arrived and it finished, else the failure's code."""
    async with connect(base, model=MODEL, voice="af_heart") as ws:
        await until(ws, "session.created")
        for word in rng.choice(TEXTS).split():
            await append(ws, word + " ")
        await commit(ws)
        audio = 0
        while True:
            event = await recv(ws, timeout=120)
            if event["type"] == "conversation.item.audio_output.delta":
                audio += len(event["delta"])
            elif event["type"] == "conversation.item.audio_output.done":
                return "done" if audio else "done without audio"
            elif "error" in event or event["type"].endswith("failed"):
                return str((event.get("error") or {}).get("code") or event["type"])


def test_soak_memory_stays_bounded_and_idle_cpu_is_zero(kokoro_dir):
    with cli_server(kokoro_dir, "--max-queue-size", "8", "--max-batch-size", "4") as (base, proc):
        server = psutil.Process(proc.pid)
        statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        stop = threading.Event()
        kinds = [*EXPECTED, "realtime"]

        def client(seed: int) -> None:
            rng = random.Random(seed)
            for kind in itertools.cycle(rng.sample(kinds, len(kinds))):  # every kind, in turn
                if stop.is_set():
                    return
                if kind == "realtime":
                    status: int | str = asyncio.run(_realtime(base, rng))
                else:
                    status = _speech(base, kind, rng)
                statuses[kind][status] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        samples: list[tuple[float, float]] = []
        while time.monotonic() - started < SOAK_S:
            samples.append((time.monotonic() - started, server.memory_info().rss / 2**20))
            time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(180)
        time.sleep(3)  # let the last jobs leave
        idle_cpu = server.cpu_percent(interval=5.0)
        samples.append((time.monotonic() - started, server.memory_info().rss / 2**20))
    during = [rss for t, rss in samples[:-1] if t >= 20.0]  # after the first requests built the caches
    half = len(during) // 2
    first_peak, second_peak, idle_end = max(during[:half]), max(during[half:]), samples[-1][1]
    requests = sum(sum(c.values()) for c in statuses.values())
    print(
        f"\nsoak: {SOAK_S:.0f} s, {requests} requests { ({k: dict(v) for k, v in statuses.items()}) }; "
        f"RSS start {samples[0][1]:.0f} MB, peak first half {first_peak:.0f} MB, second half {second_peak:.0f} MB, "
        f"idle after {idle_end:.0f} MB; "
        f"idle CPU {idle_cpu:.1f}%"
    )
    print("RSS MB every ~10 s:", [round(rss) for t, rss in samples[::5]])
    # Every request got the answer its kind must get, and every kind completed often enough.
    expected = {**EXPECTED, "realtime": "done"}
    wrong = {k: dict(c) for k, c in statuses.items() if set(c) != {expected[k]}}
    assert not wrong, wrong
    short = {k: statuses[k][expected[k]] for k in expected if statuses[k][expected[k]] < MIN_PER_KIND}
    assert not short, f"fewer than {MIN_PER_KIND} completed: {short}"
    # Bounded: the second half of the soak peaks no higher than the first (no growth with traffic), and
    # the idle server afterwards holds little more than it did at the start.
    assert second_peak - first_peak < GROWTH_BOUND_MB, samples
    assert idle_end - samples[0][1] < IDLE_BOUND_MB, samples
    assert idle_cpu < 5.0
