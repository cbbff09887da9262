"""Concurrent Kokoro requests share padded forwards; each still equals its solo run."""

import asyncio

import numpy as np
import pytest
import torch

from engines.base import SynthesisRequest
from engines.kokoro.work import Work, buckets
from tests.engines.kokoro.test_engine import assert_close
from tests.support.compile import recording_compile

MODEL = "hexgrad/Kokoro-82M"
CASES = [
    dict(text="Hi.", voice="af_heart", seed=1),
    dict(text="A somewhat longer sentence, spoken by another voice.", voice="bm_george", seed=2, speed=1.3),
    dict(text="Third request here, slower.", voice="af_bella", seed=3, speed=0.8),
    dict(text="Mixed voices speak this one.", voice="af_heart+bm_george", seed=4),
]


async def speak(engine, **case) -> np.ndarray:
    request = SynthesisRequest(model=MODEL, **case)
    return np.concatenate([c.samples async for c in engine.synthesize(request)])


@pytest.mark.parametrize("policy", ["batched", "front"])
async def test_concurrent_requests_share_their_first_step_and_match_solo(make_kokoro, policy):
    engine = await make_kokoro(kokoro_batch_policy=policy, max_wait_ms=3000)
    solo = [await speak(engine, **case) for case in CASES]  # one at a time: batches of 1
    before = engine.stats()
    together = await asyncio.gather(*(speak(engine, **case) for case in CASES))
    after = engine.stats()
    for alone, batched in zip(solo, together):
        assert_close(batched, alone)
    first_steps = after["first_step_batch_histogram"]
    assert max(int(size) for size in first_steps) == len(CASES)  # all four started in one step
    fronts = {k: v - before["front_batch_histogram"].get(k, 0) for k, v in after["front_batch_histogram"].items()}
    assert sum(v for k, v in fronts.items() if int(k) > 1) >= 1  # a real batched forward, not a round-robin
    if policy == "batched":
        assert max(int(k) for k in after["decoder_batch_histogram"]) > 1
        assert 0 < after["frame_efficiency"] < 1  # padded decoder batches of different lengths
    else:  # the CPU policy: decoder one item at a time
        assert set(after["decoder_batch_histogram"]) == {1}
    assert 0 < after["token_efficiency"] <= 1


async def test_serial_policy_matches_batched(make_kokoro):
    serial = await make_kokoro(kokoro_batch_policy="serial", max_wait_ms=3000)
    outputs = await asyncio.gather(*(speak(serial, **case) for case in CASES[:2]))
    assert set(serial.stats()["front_batch_histogram"]) == {1}
    batched = await make_kokoro(kokoro_batch_policy="batched")
    for case, out in zip(CASES[:2], outputs):
        assert_close(out, await speak(batched, **case))


async def test_a_cancelled_request_leaves_the_batch_and_its_pending_chunks_are_dropped(make_kokoro):
    engine = await make_kokoro(kokoro_batch_policy="front", max_wait_ms=3000)
    long_text = " ".join(f"Sentence {i} of a long request." for i in range(20))
    stream = engine.synthesize(SynthesisRequest(model=MODEL, text=long_text, voice="af_heart", speed=3.0))
    other = asyncio.create_task(speak(engine, **CASES[1]))
    await stream.__anext__()
    await stream.aclose()
    await other
    for _ in range(400):
        if engine.stats()["jobs_cancelled"] == 1:
            break
        await asyncio.sleep(0.05)
    stats = engine.stats()
    assert stats["jobs_cancelled"] == 1 and stats["items"] < 8  # 20 chunks were queued


class _Item:
    def __init__(self, tokens):
        self.tokens = tokens


def test_buckets_group_similar_lengths_within_the_budget():
    work = [Work(job=None, item=_Item(n)) for n in (10, 400, 12, 380, 9, 200)]
    groups = buckets(work, 1200, key=lambda w: w.item.tokens)
    sizes = [[w.item.tokens for w in g] for g in groups]
    assert sizes == [[400, 380, 200], [12, 10, 9]]  # no short item padded to 400
    assert buckets(work, 1000, key=lambda w: w.item.tokens)[0] == groups[0][:2]  # the budget splits it
    tight = buckets(work, 500, key=lambda w: w.item.tokens)
    assert all(len(g) * max(w.item.tokens for w in g) <= 500 for g in tight) and sum(map(len, tight)) == 6


async def test_kokoro_compile_routes_the_vocoder_resblocks_through_torch_compile(make_kokoro, monkeypatch):
    """The setting's wiring; Inductor itself is checked against eager in test_batched_forward.py."""
    calls: list[dict] = []
    monkeypatch.setattr(torch, "compile", recording_compile(calls))
    engine = await make_kokoro(kokoro_compile=True, kokoro_batch_policy="batched")
    plain = await make_kokoro(kokoro_batch_policy="batched")
    assert_close(await speak(engine, **CASES[0]), await speak(plain, **CASES[0]))
    assert calls and all(options == {"dynamic": True} for options in calls)
    assert engine.stats()["compiled"] is True and plain.stats()["compiled"] is False


@pytest.mark.parametrize(("value", "setting"), [("auto", "auto"), ("off", "off"), ("true", "on"), ("0", "off")])
async def test_kokoro_compile_default_is_on_for_a_cpu(make_kokoro, monkeypatch, value, setting):
    """``auto`` (the default) compiles on a CPU, where it was measured faster; true/false still mean on/off."""
    calls: list[dict] = []
    monkeypatch.setattr(torch, "compile", recording_compile(calls))
    monkeypatch.setenv("TTS_KOKORO_COMPILE", value)
    engine = await make_kokoro()
    assert engine.settings.compile == setting
    compiled = setting != "off"  # the tests' engines run on a CPU
    assert engine.stats()["compiled"] is compiled and bool(calls) is compiled
