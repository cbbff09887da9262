"""The codec stage: SNAC windows of every stream decoded in batches on their own thread."""

from __future__ import annotations

import asyncio

from engines.orpheus.codec_stage import resolve_batching
from engines.orpheus.tokens import SAMPLES_PER_FRAME
from tests.engines.orpheus.helpers import synthesize


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
    assert resolve_batching("auto", "cuda:0", 32) == 32 and resolve_batching("auto", "cpu", 32) == 4
    assert resolve_batching("on", "cpu", 32) == 32 and resolve_batching("off", "cuda", 32) == 1
