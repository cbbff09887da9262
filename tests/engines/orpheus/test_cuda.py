"""The Orpheus engine on a CUDA device (bf16 LM, batched SNAC): runs only where one is present.

The CPU suite covers the same code paths in fp32; here the device and dtype are what change.
"""

import asyncio

import pytest

from engines.orpheus.engine import OrpheusEngine
from server.settings import ORPHEUS_MODEL
from tests.engines.orpheus.conftest import settings_for
from tests.engines.orpheus.helpers import synthesize

pytestmark = pytest.mark.gpu
FRAME = 2048


def test_cuda_engine_streams_whole_frames_reproducibly_and_batches(orpheus_dirs):
    engine = OrpheusEngine(ORPHEUS_MODEL, settings_for(orpheus_dirs, device="cuda", max_batch_size=8))

    async def run():
        await engine.load()
        try:
            first = await synthesize(engine, seed=11, max_tokens=70)
            again = await synthesize(engine, seed=11, max_tokens=70)
            many = await asyncio.gather(*(synthesize(engine, seed=s, max_tokens=70) for s in range(6)))
            return first, again, many, engine.stats()
        finally:
            await engine.close()

    first, again, many, stats = asyncio.run(run())
    assert first.size == 10 * FRAME and (first == again).all()
    assert all(audio.size == 10 * FRAME for audio in many)
    assert stats["max_batch_size_seen"] > 1
