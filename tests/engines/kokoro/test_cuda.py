"""The same engine on a CUDA device: runs only where one is present (marked `gpu`).

On CUDA the engine converts PCM on the device (``kokoro_device_pcm=auto``), so chunks arrive as
``EncodedPcm`` bytes rather than float ``PcmChunk`` samples: both are read back to floats here.
"""

import asyncio
import contextlib

import numpy as np
import pytest
import torch

from engines.base import EncodedPcm, OutputSpec, PcmChunk, SynthesisRequest, WordTimings
from engines.kokoro.engine import KokoroEngine
from tests.engines.kokoro.test_engine import assert_close
from tests.support.g711 import alaw_to_s16, ulaw_to_s16

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
    """Kokoro's section on CUDA; ``overrides`` are its field names (batch_policy, device_pcm...)."""
    return KokoroEngine(MODEL, settings.kokoro.model_copy(update={"device": "cuda", **overrides}))


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


@pytest.fixture
def full_fp32():
    """TF32 off: cuDNN's convolutions and cuBLAS's matmuls round inputs to 10 bits with it (on by default
    for cuDNN), far above the 1e-4 that batched and solo output must agree to."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


CASES = [
    dict(text="Hi.", voice="af_heart", seed=1),
    dict(text="A somewhat longer sentence, spoken by another voice.", voice="bm_george", seed=2, speed=1.3),
    dict(text="Third request here, slower.", voice="af_bella", seed=3, speed=0.8),
    dict(text="Mixed voices speak this one.", voice="af_heart+bm_george", seed=4),
]


async def session_events(engine: KokoroEngine, request: SynthesisRequest) -> list:
    """Every event of one whole-text session (audio and word timings), as the HTTP route reads them."""
    session = await engine.open_session(request)
    async with contextlib.aclosing(session.events()) as stream, session:
        await session.feed(request.text)
        await session.commit()
        return [event async for event in stream]


async def events(engine: KokoroEngine, **request) -> tuple[list[EncodedPcm], list]:
    chunks, words = [], []
    for event in await session_events(engine, SynthesisRequest(model=MODEL, **request)):
        if isinstance(event, EncodedPcm):
            chunks.append(event)
        elif isinstance(event, WordTimings):
            words.extend(event.words)
    return chunks, words


@pytest.mark.parametrize("policy", ["front", "batched"])
def test_cuda_device_pcm_resamples_encodes_g711_and_times_words(kokoro_settings, kokoro_engine, policy):
    """On CUDA the engine resamples and encodes on the device, under either batching policy: G.711 at
    8 kHz decodes to the device's own 16-bit output, and word timings match the CPU engine's."""
    engine = cuda_engine(kokoro_settings, batch_policy=policy, device_pcm="on")
    base = dict(text="Hello from the GPU, with word timings.", voice="af_heart", seed=7, word_timestamps=True)

    def at(rate: int, encoding: str) -> dict:
        return {**base, "output": OutputSpec(format="raw", encoding=encoding, sample_rate=rate)}

    async def run():
        await engine.load()
        try:
            return {enc: await events(engine, **at(8000, enc)) for enc in ("pcm_s16le", "pcm_mulaw", "pcm_alaw")}
        finally:
            await engine.close()

    out = asyncio.run(run())
    assert engine.stats()["policy"] == policy
    s16 = np.frombuffer(b"".join(c.data for c in out["pcm_s16le"][0]), dtype="<i2").astype(np.float64)
    for encoding, decode in (("pcm_mulaw", ulaw_to_s16), ("pcm_alaw", alaw_to_s16)):
        chunks, _ = out[encoding]
        assert all(c.sample_rate == 8000 and c.encoding == encoding for c in chunks)
        codes = np.frombuffer(b"".join(c.data for c in chunks), dtype=np.uint8)
        assert codes.size == s16.size  # one byte per 8 kHz sample, as many samples as 16-bit
        g711 = decode(codes).astype(np.float64)
        assert np.corrcoef(g711, s16)[0, 1] > 0.99  # 8-bit logarithmic quantization of the same audio
    # Word timings: durations come from the predictor, so the CPU engine times the same words alike.
    cpu_words = asyncio.run(cpu_word_timings(kokoro_engine, base))
    gpu_words = out["pcm_s16le"][1]
    assert [w.word for w in gpu_words] == [w.word for w in cpu_words] and gpu_words
    assert all(abs(g.start - c.start) < 0.03 and abs(g.end - c.end) < 0.03 for g, c in zip(gpu_words, cpu_words))
    assert gpu_words[-1].end <= s16.size / 8000 + 0.03


async def cpu_word_timings(engine: KokoroEngine, request: dict) -> list:
    found = await session_events(engine, SynthesisRequest(model=MODEL, **request))
    return [word for event in found if isinstance(event, WordTimings) for word in event.words]


# Last: its compiled case spends tens of seconds in Inductor (a cut-off run keeps the checks above).
@pytest.mark.usefixtures("full_fp32")
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_cuda_requests_share_batched_decoder_calls_and_match_solo(kokoro_settings, compile):
    """The CUDA policy: one padded decoder call for concurrent requests, each equal to its solo run."""
    engine = cuda_engine(kokoro_settings, max_wait_ms=3000, compile=compile, device_pcm="off")

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
