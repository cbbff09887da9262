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


def _run(engine, seeds):
    async def run():
        await engine.load()
        try:
            first = await synthesize(engine, seed=11, max_tokens=70)
            again = await synthesize(engine, seed=11, max_tokens=70)
            many = await asyncio.gather(*(synthesize(engine, seed=s, max_tokens=70) for s in seeds))
            return first, again, many, engine.stats()
        finally:
            await engine.close()

    return asyncio.run(run())


def test_cuda_graphs_decode_the_same_audio(orpheus_dirs):
    """The transformers backend with CUDA graphs (bucketed rows and width) against eager decoding."""
    plain = _run(OrpheusEngine(ORPHEUS_MODEL, settings_for(orpheus_dirs, device="cuda", max_batch_size=8)), range(6))
    graphs = OrpheusEngine(
        ORPHEUS_MODEL, settings_for(orpheus_dirs, device="cuda", max_batch_size=8, orpheus_cuda_graphs=True)
    )
    first, again, many, stats = _run(graphs, range(6))
    assert (first == again).all() and first.size == 10 * FRAME
    assert stats["codec_batching"] and all(a.size == 10 * FRAME for a in many)
    for x, y in zip(plain[2], many):  # same seeds: the same tokens, so the same frames
        assert x.shape == y.shape


def test_cuda_vllm_backend_streams_whole_frames(tmp_path):
    """The vLLM backend on CUDA (where vLLM is installed): whole frames, a seed reproduces a request."""
    pytest.importorskip("vllm")
    from tests.engines.orpheus.tiny_weights import VLLM_TINY, build_all

    dirs = build_all(tmp_path, **VLLM_TINY)
    settings = settings_for(dirs, device="cuda", orpheus_backend="vllm", orpheus_max_model_len=1024)
    first, again, many, stats = _run(OrpheusEngine(ORPHEUS_MODEL, settings), range(8))
    assert first.size % FRAME == 0 and 0 < first.size <= 10 * FRAME and (first == again).all()
    assert all(a.size % FRAME == 0 for a in many) and stats["frames_invalid"] == 0
    assert stats["backend"] == "vllm" and stats["vllm_unfinished_requests"] == 0
