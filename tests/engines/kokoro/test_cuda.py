"""The same engine on a CUDA device: runs only where one is present (marked `gpu`)."""

import asyncio

import numpy as np
import pytest

from engines.base import SynthesisRequest
from engines.kokoro.engine import KokoroEngine

pytestmark = pytest.mark.gpu


def test_cuda_audio_matches_cpu(kokoro_settings, kokoro_engine):
    request = dict(model="hexgrad/Kokoro-82M", text="Hello from the GPU. Second sentence.", voice="af_heart", seed=4)
    engine = KokoroEngine("hexgrad/Kokoro-82M", kokoro_settings.model_copy(update={"device": "cuda"}))

    async def run(e):
        return np.concatenate([c.samples async for c in e.synthesize(SynthesisRequest(**request))])

    asyncio.run(engine.load())
    try:
        gpu = asyncio.run(run(engine))
    finally:
        asyncio.run(engine.close())
    cpu = asyncio.run(run(kokoro_engine))
    # Same durations (integer frame counts), near-identical waveform up to float rounding and the
    # vocoder's noise source, which draws from a different generator on CUDA.
    assert gpu.shape == cpu.shape

    def envelope(x):
        frames = x[: x.size // 480 * 480].reshape(-1, 480)
        return np.sqrt((frames**2).mean(axis=1))

    assert np.corrcoef(envelope(gpu), envelope(cpu))[0, 1] > 0.9
