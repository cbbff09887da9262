"""The codec stage: SNAC windows of every stream decoded in batches on their own thread."""

from __future__ import annotations

import asyncio

from engines.orpheus.codec_stage import resolve_batching
from engines.orpheus.tokens import SAMPLES_PER_FRAME
from tests.engines.orpheus.helpers import synthesize
from tests.support.compile import recording_compile


async def test_eight_staggered_streams_share_codec_calls(make_engine):
    # The LM outpaces SNAC on CPU, so while one batch decodes the next windows of every stream queue
    # up; the stage takes them together (one call per window length). The fill wait is long here so the
    # figure does not hinge on how fast this machine happens to be.
    engine = await make_engine(
        max_batch_size=8, orpheus_codec_batching="on", orpheus_codec_max_batch=32, orpheus_codec_wait_ms=100.0
    )

    async def staggered(i: int):
        await asyncio.sleep(0.03 * i)
        return await synthesize(engine, text=f"Stream {i} speaks.", seed=100 + i, max_tokens=70)

    audio = await asyncio.gather(*(staggered(i) for i in range(8)))
    assert all(a.size == 10 * SAMPLES_PER_FRAME for a in audio)
    stats = engine.stats()
    assert stats["codec_batching"] is True
    assert stats["codec_windows"] >= 8 * 3  # first chunk, one of 4 frames, the tail
    assert stats["windows_per_codec_call"] >= 4, stats
    assert stats["codec_queue_wait_ms"] > 0 and stats["codec_seconds"] > 0


async def test_without_batching_each_call_decodes_one_window(make_engine):
    engine = await make_engine(max_batch_size=4, orpheus_codec_batching="off")
    audio = await asyncio.gather(*(synthesize(engine, seed=s, max_tokens=35) for s in (1, 2)))
    assert all(a.size == 5 * SAMPLES_PER_FRAME for a in audio)
    stats = engine.stats()
    assert stats["codec_batching"] is False and stats["codec_max_windows_per_call"] == 1


def test_batch_size_follows_the_device_unless_forced():
    assert resolve_batching("auto", "cuda:0", 32) == 32 and resolve_batching("auto", "cpu", 32) == 2
    assert resolve_batching("on", "cpu", 32) == 32 and resolve_batching("off", "cuda", 32) == 1


async def test_orpheus_codec_compile_routes_snac_through_torch_compile(make_engine, monkeypatch):
    """The setting's wiring; Inductor itself is checked against eager in test_snac_stream.py."""
    import torch

    calls: list[dict] = []
    monkeypatch.setattr(torch, "compile", recording_compile(calls))
    engine = await make_engine(orpheus_codec_compile=True)
    compiled_at_load = len(calls)
    plain = await make_engine()
    assert compiled_at_load >= 2  # compile_now: one window, then a batch of two, before any request
    with_compile = await synthesize(engine, seed=3, max_tokens=35)
    assert len(calls) > compiled_at_load and all(options == {"dynamic": True} for options in calls)
    assert (with_compile == await synthesize(plain, seed=3, max_tokens=35)).all()
    assert engine.stats()["codec_compiled"] is True and plain.stats()["codec_compiled"] is False
