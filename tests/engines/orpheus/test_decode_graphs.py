"""CUDA-graph capture and replay on the CPU, against a stand-in capture as strict as CUDA's.

While a capture is open on a GPU, another thread that allocates, copies or syncs fails ("operation
not permitted when stream is capturing"), and so does a host sync inside the captured step. The
:class:`StrictCapture` below fails the same way on the CPU: it records every capture, fails one
that opens while another device thread (the codec stage, a model worker) runs, fails device work of
another thread while it is open, and fails host syncs inside it. Replays run the captured step.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from engines.orpheus import decode_graphs
from engines.orpheus.decode_graphs import DecodeGraphs
from tests.engines.orpheus.helpers import synthesize

DEVICE_THREADS = ("tts-orpheus-codec", "tts-worker-")
HOST_SYNCS = {"_local_scalar_dense", "nonzero", "masked_select", "item", "equal", "is_nonzero"}


class NoHostSync(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in HOST_SYNCS:
            raise RuntimeError(f"host sync ({func}) while capturing")
        return func(*args, **(kwargs or {}))


class StrictGraph:
    def __init__(self, fn, owner: StrictCapture) -> None:
        self.fn, self.owner = fn, owner

    def replay(self) -> None:
        self.owner.replays += 1
        self.fn()


class StrictCapture:
    def __init__(self, hold_s: float = 0.02) -> None:
        self.hold_s = hold_s  # a capture takes time; others get the chance to collide
        # Other engines' threads already running (the session's engine) stay allowed: a thread-local
        # capture does not hazard them. The engine under test's own threads must not run yet.
        self.baseline = set(threading.enumerate())
        self.open_in: int | None = None
        self.captures: list[tuple[int, int]] = []
        self.violations: list[str] = []
        self.replays = 0

    def warm_up(self, fn) -> None:
        fn()

    def capture(self, fn) -> StrictGraph:
        others = [t.name for t in set(threading.enumerate()) - self.baseline if t.name.startswith(DEVICE_THREADS)]
        if others:
            self.violations.append(f"capture opened while {others} run")
            raise RuntimeError("operation not permitted when stream is capturing")
        self.open_in = threading.get_ident()
        try:
            with NoHostSync():
                fn()
            time.sleep(self.hold_s)
        finally:
            self.open_in = None
        self.captures.append(fn)
        return StrictGraph(fn, self)

    def guard(self, what: str) -> None:
        """Device work of some thread: fails while another thread's capture is open."""
        if self.open_in is not None and self.open_in != threading.get_ident():
            self.violations.append(f"{what} during a capture")
            raise RuntimeError("operation not permitted when stream is capturing")


@pytest.fixture
def strict(monkeypatch) -> StrictCapture:
    capture = StrictCapture()
    monkeypatch.setattr(decode_graphs, "graph_capture_for", lambda device: capture)
    return capture


def guard_codec(engine, capture: StrictCapture) -> None:
    codec = engine.codec.codec
    decode = codec.decode

    def guarded(windows):
        capture.guard("a SNAC decode")  # allocates, copies and syncs with the host on a GPU
        return decode(windows)

    codec.decode = guarded


async def test_every_graph_is_captured_at_load_and_serving_only_replays(make_engine, strict):
    engine = await make_engine(max_batch_size=3, orpheus_cuda_graphs=True, orpheus_max_model_len=512)
    graphs = engine.scheduler.graphs
    assert graphs.buckets() == [(r, w) for r in (1, 2, 3) for w in (256, 512)]
    assert len(strict.captures) == len(graphs.buckets()) == len(graphs.graphs)  # all of them, at load
    guard_codec(engine, strict)
    # Long enough to cross the 256-token width bucket mid-stream, three at once, then one more.
    audio = [await synthesize(engine, seed=1, max_tokens=301)]
    audio += await asyncio.gather(*(synthesize(engine, seed=s, max_tokens=301) for s in (2, 3, 4)))
    assert strict.violations == []
    assert len(strict.captures) == len(graphs.buckets())  # nothing captured while serving
    stats = engine.stats()
    assert stats["cuda_graph_replays"] == strict.replays > 0
    assert stats["cuda_graphs_captured"] == len(graphs.buckets())
    assert all(a.size > 0 and a.size % 2048 == 0 for a in audio)
    assert max(a.size for a in audio) > 40 * 2048  # some stream crossed into the 512-wide bucket


async def test_replayed_graphs_sound_like_the_padded_eager_step(make_engine, monkeypatch):
    eager = await make_engine(max_batch_size=2, orpheus_cuda_graphs=True, orpheus_max_model_len=256)
    strict = StrictCapture(hold_s=0)
    monkeypatch.setattr(decode_graphs, "graph_capture_for", lambda device: strict)
    graphed = await make_engine(max_batch_size=2, orpheus_cuda_graphs=True, orpheus_max_model_len=256)
    a = await asyncio.gather(*(synthesize(eager, seed=s, max_tokens=35) for s in (5, 6)))
    b = await asyncio.gather(*(synthesize(graphed, seed=s, max_tokens=35) for s in (5, 6)))
    for x, y in zip(a, b):
        assert x.shape == y.shape and np.abs(x - y).max() < 1e-5
    assert strict.replays > 0 and eager.scheduler.graphs.replays == 0


def test_the_stand_in_catches_a_host_sync_in_the_step():
    x = torch.zeros(4)
    graphs = DecodeGraphs(lambda rows, width: x[:rows].sum().item(), 4, 256, capture=StrictCapture(hold_s=0))
    with pytest.raises(RuntimeError, match="host sync"):
        graphs.capture_all()


def test_buckets_cover_every_shape_the_scheduler_asks_for():
    graphs = DecodeGraphs(lambda rows, width: None, 40, 1000, capture=StrictCapture(hold_s=0))
    graphs.capture_all()
    assert graphs.row_buckets == [1, 2, 4, 8, 12, 16, 24, 32, 40] and graphs.widths == [256, 512, 768, 1000]
    for rows in range(1, 41):
        for width in (1, 255, 256, 257, 999, 1000):
            graphs.run(rows, width)  # a missing bucket would raise: serving never captures
    assert graphs.replays == 40 * 6


def test_serving_never_captures_a_missing_bucket():
    graphs = DecodeGraphs(lambda rows, width: None, 4, 256, capture=StrictCapture(hold_s=0))
    with pytest.raises(RuntimeError, match="capture_all"):
        graphs.run(1, 10)
