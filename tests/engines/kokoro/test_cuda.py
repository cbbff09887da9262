"""The same engine on a CUDA device: runs only where one is present (marked `gpu`).

On CUDA the engine converts PCM on the device (``kokoro_device_pcm=auto``), so chunks arrive as
``EncodedPcm`` bytes rather than float ``PcmChunk`` samples: both are read back to floats here.
"""

import asyncio

import numpy as np
import pytest

from engines.base import EncodedPcm, PcmChunk, SynthesisRequest
from engines.kokoro.engine import KokoroEngine
from tests.engines.kokoro.test_engine import assert_close

pytestmark = pytest.mark.gpu
MODEL = "hexgrad/Kokoro-82M"


def as_float(chunk: PcmChunk | EncodedPcm) -> np.ndarray:
    if isinstance(chunk, PcmChunk):
        return chunk.samples
    assert chunk.encoding == "pcm_s16le", chunk.encoding
    return np.frombuffer(chunk.data, dtype="<i2").astype(np.float32) / 32768.0


async def speak(engine: KokoroEngine, **request) -> np.ndarray:
    return np.concatenate([as_float(c) async for c in engine.synthesize(SynthesisRequest(model=MODEL, **request))])


def cuda_engine(settings, **overrides) -> KokoroEngine:
    return KokoroEngine(MODEL, settings.model_copy(update={"device": "cuda", **overrides}))


def test_cuda_audio_matches_cpu(kokoro_settings, kokoro_engine):
    request = dict(text="Hello from the GPU. Second sentence.", voice="af_heart", seed=4)
    engine = cuda_engine(kokoro_settings)
    asyncio.run(engine.load())
    try:
        gpu = asyncio.run(speak(engine, **request))
        assert engine.stats()["policy"] == "batched"  # the CUDA default
    finally:
        asyncio.run(engine.close())
    cpu = asyncio.run(speak(kokoro_engine, **request))
    # Same durations (integer frame counts), near-identical waveform up to float rounding and the
    # vocoder's noise source, which draws from a different generator on CUDA.
    assert gpu.shape == cpu.shape

    def envelope(x):
        frames = x[: x.size // 480 * 480].reshape(-1, 480)
        return np.sqrt((frames**2).mean(axis=1))

    assert np.corrcoef(envelope(gpu), envelope(cpu))[0, 1] > 0.9


CASES = [
    dict(text="Hi.", voice="af_heart", seed=1),
    dict(text="A somewhat longer sentence, spoken by another voice.", voice="bm_george", seed=2, speed=1.3),
    dict(text="Third request here, slower.", voice="af_bella", seed=3, speed=0.8),
    dict(text="Mixed voices speak this one.", voice="af_heart+bm_george", seed=4),
]


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_cuda_requests_share_batched_decoder_calls_and_match_solo(kokoro_settings, compile):
    """The CUDA policy: one padded decoder call for concurrent requests, each equal to its solo run."""
    engine = cuda_engine(kokoro_settings, max_wait_ms=3000, kokoro_compile=compile, kokoro_device_pcm="off")

    async def run():
        await engine.load()
        try:
            solo = [await speak(engine, **case) for case in CASES]
            together = await asyncio.gather(*(speak(engine, **case) for case in CASES))
            return solo, together, engine.stats()
        finally:
            await engine.close()

    solo, together, stats = asyncio.run(run())
    for alone, batched in zip(solo, together):
        assert_close(batched, alone)
    assert max(int(k) for k in stats["decoder_batch_histogram"]) > 1
    assert max(int(k) for k in stats["first_step_batch_histogram"]) == len(CASES)
    assert stats["compiled"] is compile
