"""``cuda:N`` placement without a GPU: the device each CUDA call is given, checked on fakes.

A thread's CUDA calls without a device go to its current device (cuda:0 unless set), so a model on
cuda:1 needs every thread that launches its work to bind cuda:1, and every stream, event and graph
to name it. torch.cuda's entry points are replaced by recorders here; the ``gpu`` tests run the
same code on ``cuda:1`` where two devices exist.
"""

from __future__ import annotations

import contextlib
import threading
import types

import pytest
import torch

from engines import device as device_module
from engines.orpheus import decode_graphs, scheduler
from engines.orpheus.codec_stage import CodecStage
from engines.worker import BatchWorker

CUDA1 = torch.device("cuda", 1)


@pytest.fixture
def cuda_calls(monkeypatch) -> list[tuple]:
    """torch.cuda's device-taking entry points, recorded (thread name, call, device)."""
    calls: list[tuple] = []

    def record(name):
        def call(*args, **kwargs):
            calls.append((threading.current_thread().name, name, *args, *kwargs.items()))
            return types.SimpleNamespace(name=name, args=args, wait_stream=lambda other: None)

        return call

    @contextlib.contextmanager
    def device(dev):
        calls.append((threading.current_thread().name, "device", torch.device(dev)))
        yield

    monkeypatch.setattr(torch.cuda, "set_device", record("set_device"))
    monkeypatch.setattr(torch.cuda, "Stream", record("Stream"))
    monkeypatch.setattr(torch.cuda, "current_stream", record("current_stream"))
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", record("graph_pool_handle"))

    @contextlib.contextmanager
    def stream(s):
        calls.append((threading.current_thread().name, "stream", s))
        yield

    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "stream", stream)
    return calls


def test_a_worker_thread_binds_its_device_before_any_step(cuda_calls):
    worker = BatchWorker("m", lambda jobs: None, max_batch_size=1, max_wait_ms=0, max_queue_size=1, device="cuda:1")
    worker.start()
    try:
        with worker._cond:
            worker._stopping = True
            worker._cond.notify_all()
        worker._thread.join(5)
    finally:
        worker._stopping = True
    assert ("tts-worker-m", "set_device", CUDA1) in cuda_calls


def test_a_cpu_worker_touches_no_cuda_device(cuda_calls):
    worker = BatchWorker("m", lambda jobs: None, max_batch_size=1, max_wait_ms=0, max_queue_size=1, device="cpu")
    worker.start()
    with worker._cond:
        worker._stopping = True
        worker._cond.notify_all()
    worker._thread.join(5)
    assert cuda_calls == []


def test_the_codec_thread_binds_the_codec_device_and_its_stream_is_there(cuda_calls):
    codec = types.SimpleNamespace(device=CUDA1, compiled=None)
    stage = CodecStage(codec, max_batch=4)
    stage.start()
    stage.stop()
    assert ("MainThread", "Stream", CUDA1) in cuda_calls
    assert ("tts-orpheus-codec", "set_device", CUDA1) in cuda_calls


def test_the_token_copy_event_is_recorded_on_the_cache_devices_stream(cuda_calls, monkeypatch):
    recorded = []

    class Event:
        def record(self, stream=None):
            recorded.append(stream)

    monkeypatch.setattr(torch.cuda, "Event", Event)
    scheduler.copy_event(CUDA1)
    assert len(recorded) == 1 and recorded[0].name == "current_stream" and recorded[0].args == (CUDA1,)


def test_graphs_are_captured_on_the_devices_own_side_stream_in_thread_local_mode(cuda_calls, monkeypatch):
    captured = []

    @contextlib.contextmanager
    def graph(g, **kwargs):
        captured.append(kwargs)
        yield

    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: "graph")
    capture = decode_graphs.CudaGraphCapture("cuda:1")
    ran = []
    capture.warm_up(lambda: ran.append("warm"))
    assert capture.capture(lambda: ran.append("capture")) == "graph" and ran == ["warm", "capture"]
    assert capture.stream.args == (CUDA1,)  # not the thread's current device's stream
    (kwargs,) = captured
    assert kwargs["stream"] is capture.stream and kwargs["capture_error_mode"] == "thread_local"
    assert kwargs["pool"] is capture.pool
    # Every step that could launch work ran under cuda:1.
    assert [c[2] for c in cuda_calls if c[1] == "device"] == [CUDA1, CUDA1, CUDA1]
    assert ("MainThread", "current_stream", CUDA1) in cuda_calls


def test_free_memory_counts_the_allocators_cached_blocks(monkeypatch):
    """After an engine restart the old engine's blocks sit in PyTorch's cache: free to reuse."""
    gib = 1 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (10 * gib, 140 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 50 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 8 * gib)
    assert device_module.free_memory("cuda:1") == 52 * gib


def test_binding_cpu_or_nothing_is_a_no_op(cuda_calls):
    device_module.bind_thread(None)
    device_module.bind_thread("cpu")
    device_module.bind_thread(torch.device("meta"))
    assert cuda_calls == []
