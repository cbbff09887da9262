"""The Orpheus engine on a CUDA device (bf16 LM, batched SNAC): runs only where one is present.

The CPU suite covers the same code paths in fp32; here the device and dtype are what change. The
transformers backend is pinned (``auto`` would pick vLLM where it is installed); the vLLM test
asks for it by name.
"""

import asyncio

import numpy as np
import pytest
import torch

from engines.device import free_memory
from engines.orpheus.engine import OrpheusEngine
from engines.orpheus.settings import ORPHEUS_MODEL
from tests.engines.orpheus.conftest import settings_for
from tests.engines.orpheus.helpers import synthesize

pytestmark = pytest.mark.gpu
FRAME = 2048


def cuda_settings(dirs, **overrides):
    """Orpheus's section on CUDA (what the engine receives)."""
    return settings_for(dirs, **{"device": "cuda", "orpheus_backend": "transformers", **overrides}).orpheus


def test_cuda_engine_streams_whole_frames_reproducibly_and_batches(orpheus_dirs):
    engine = OrpheusEngine(ORPHEUS_MODEL, cuda_settings(orpheus_dirs, max_batch_size=8))

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
    assert stats["max_batch_size_seen"] > 1 and stats["backend"] == "transformers"


def _run(engine, seeds, at_load=None):
    async def run():
        await engine.load()
        if at_load is not None:
            at_load.update(engine.stats())
        try:
            first = await synthesize(engine, seed=11, max_tokens=70)
            again = await synthesize(engine, seed=11, max_tokens=70)
            many = await asyncio.gather(*(synthesize(engine, seed=s, max_tokens=70) for s in seeds))
            return first, again, many, engine.stats()
        finally:
            await engine.close()

    return asyncio.run(run())


def test_cuda_graphs_are_captured_at_load_and_decode_the_same_audio(orpheus_dirs):
    """The transformers backend with CUDA graphs (bucketed rows and width) against eager decoding:
    every bucket captured at load (8 rows x 512 tokens: rows 1, 2, 4, 8 by widths 256, 512), serving
    replays them and captures nothing more."""
    sizes = dict(max_batch_size=8, orpheus_max_model_len=512)
    plain = _run(OrpheusEngine(ORPHEUS_MODEL, cuda_settings(orpheus_dirs, **sizes)), range(6))
    graphs = OrpheusEngine(ORPHEUS_MODEL, cuda_settings(orpheus_dirs, orpheus_cuda_graphs=True, **sizes))
    at_load: dict = {}
    first, again, many, stats = _run(graphs, range(6), at_load)
    assert at_load["cuda_graphs_captured"] == 8 and at_load["cuda_graph_replays"] == 0
    assert stats["cuda_graphs_captured"] == 8 and stats["cuda_graph_replays"] >= stats["decode_steps"] > 0
    assert (first == again).all() and first.size == 10 * FRAME
    assert stats["codec_batching"] and all(a.size == 10 * FRAME for a in many)
    for x, y in zip(plain[2], many):  # same seeds: the same tokens, so the same frames
        assert x.shape == y.shape


def test_cuda_default_kv_rows_fit_the_free_memory_and_serve(orpheus_dirs):
    """No max_batch_size: the slot cache takes as many rows as half the free memory holds (at most 32)."""
    engine = OrpheusEngine(ORPHEUS_MODEL, cuda_settings(orpheus_dirs, orpheus_max_model_len=1024))
    first, again, many, stats = _run(engine, range(4))
    assert stats["lm_rows_capacity"] == 32  # the tiny model's rows are small: the cap binds
    assert (first == again).all() and all(a.size == 10 * FRAME for a in many)


def test_free_memory_counts_blocks_cached_by_an_earlier_engine():
    """After a restart the old engine's blocks sit in PyTorch's cache: the driver calls them taken."""
    device = torch.device("cuda")
    block = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    del block  # cached by the allocator, not returned to the driver
    free, _ = torch.cuda.mem_get_info(device)
    assert free_memory(device) >= free + (1 << 30)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_cuda_1_keeps_every_tensor_and_launch_on_that_device(orpheus_dirs):
    """cuda:1: the worker and codec threads bind it; graphs, events and copies live there, none on cuda:0."""
    torch.cuda.reset_peak_memory_stats(0)
    before = torch.cuda.memory_allocated(0)
    engine = OrpheusEngine(
        ORPHEUS_MODEL, cuda_settings(orpheus_dirs, device="cuda:1", max_batch_size=4, orpheus_cuda_graphs=True)
    )
    first, again, many, stats = _run(engine, range(4))
    assert (first == again).all() and first.size == 10 * FRAME and all(a.size == 10 * FRAME for a in many)
    assert stats["cuda_graph_replays"] > 0
    assert torch.cuda.max_memory_allocated(0) == before  # nothing was ever placed on cuda:0


def test_cuda_codec_compile_matches_the_eager_codec(orpheus_dirs):
    """orpheus_codec_compile on CUDA: Inductor's SNAC decoder, compiled at load, sounds like eager."""
    eager = _run(OrpheusEngine(ORPHEUS_MODEL, cuda_settings(orpheus_dirs, max_batch_size=4)), range(3))
    compiled = OrpheusEngine(ORPHEUS_MODEL, cuda_settings(orpheus_dirs, max_batch_size=4, orpheus_codec_compile=True))
    first, again, many, stats = _run(compiled, range(3))
    assert stats["codec_compiled"] and "codec_compile_fallback" not in stats
    assert (first == again).all()
    for x, y in zip(eager[2], many):  # the same tokens (eager LM both times): only the codec differs
        assert x.shape == y.shape and np.abs(x - y).max() < 1e-3


def test_cuda_vllm_backend_streams_whole_frames(tmp_path):
    """The vLLM backend on CUDA (where vLLM is installed): whole frames, a seed reproduces a request."""
    pytest.importorskip("vllm")
    from benchmarks.models.orpheus import VLLM_TINY, build_all

    dirs = build_all(tmp_path, **VLLM_TINY)
    settings = settings_for(dirs, device="cuda", orpheus_backend="vllm", orpheus_max_model_len=1024)
    first, again, many, stats = _run(OrpheusEngine(ORPHEUS_MODEL, settings.orpheus), range(8))
    assert first.size % FRAME == 0 and 0 < first.size <= 10 * FRAME and (first == again).all()
    assert all(a.size % FRAME == 0 for a in many) and stats["frames_invalid"] == 0
    assert stats["backend"] == "vllm" and stats["vllm_unfinished_requests"] == 0
