"""CUDA graphs for the decode step, one per bucket of rows and attention width, all captured at load.

A decode step of a small batch is dozens of small kernels per layer; launching them from Python
costs more than running them on a large GPU. A CUDA graph replays the whole step (forward, audio
head, sampling, state updates) as one launch. Graphs need fixed shapes and fixed memory, which the
slot cache gives: every tensor the step reads or writes is preallocated, and the step is captured
for ``rows`` rounded up to a bucket (the extra rows are free cache rows; whatever they compute is
never read, and a joining sequence resets its row) and ``width`` rounded up to a multiple of
``width_step`` columns (masked beyond each row's length).

Every bucket is captured by :meth:`DecodeGraphs.capture_all` while the engine loads, before the
codec thread or any request runs: entering a capture synchronizes the device and empties the
allocator's cache, and a capture open while another thread allocates or copies fails that work
("operation not permitted when stream is capturing"). Serving only replays. Captures use a private
memory pool, the thread-local error mode (another engine's worker in the same process is not
hazarded) and side streams of the cache's own device (``cuda:N``).

Without a capture (CPU) the same padded shapes run eagerly, so the CPU tests cover the padding;
tests also pass a stand-in :class:`GraphCapture` that is stricter than CUDA about what may happen
while a capture is open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

ROW_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: Attention width granularity. Every decode step, with graphs or without, attends over its width rounded
#: up to this: a float reduction's result depends on how many columns it runs over (masked ones too), so
#: widths that differ by mode made a row's logits differ in the last bits, and sampling once turned that
#: into a different token. With one rounding for both, a row computes the same either way.
WIDTH_STEP = 256


def padded_width(width: int, max_len: int, step: int = WIDTH_STEP) -> int:
    return min(-(-width // step) * step, max_len)


class GraphCapture(Protocol):
    """How a step is warmed up and captured on one device (:class:`CudaGraphCapture`, or a test's)."""

    def warm_up(self, fn: Callable[[], None]) -> None: ...

    def capture(self, fn: Callable[[], None]) -> Any: ...  # returns a graph: ``.replay()``


class CudaGraphCapture:
    """CUDA graph capture on ``device``: its own side stream, a private pool, thread-local error mode."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self.pool = torch.cuda.graph_pool_handle()
            self.stream = torch.cuda.Stream(self.device)

    def warm_up(self, fn: Callable[[], None]) -> None:
        # Lazy cuBLAS/allocator setup must happen before capture, on the stream that will capture.
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            fn()
        current.wait_stream(self.stream)

    def capture(self, fn: Callable[[], None]) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        with (
            torch.cuda.device(self.device),
            torch.cuda.graph(graph, pool=self.pool, stream=self.stream, capture_error_mode="thread_local"),
        ):
            fn()
        return graph


def graph_capture_for(device: torch.device) -> GraphCapture | None:
    """The capture for the cache's device: CUDA's on a GPU; none on a CPU (the padded step runs eagerly)."""
    return CudaGraphCapture(device) if device.type == "cuda" else None


class DecodeGraphs:
    def __init__(
        self,
        step: Callable[[int, int], None],
        max_rows: int,
        max_len: int,
        *,
        capture: GraphCapture | None,
        width_step: int = WIDTH_STEP,
        state: list[torch.Tensor] | None = None,
    ) -> None:
        self.step = step  # step(rows, width): decode and sample rows 0 .. rows-1 in place
        self.max_rows, self.max_len = max_rows, max_len
        self.capturer = capture
        self.width_step = width_step
        self.state = state or []  # tensors a warm-up run changes, restored before capture
        self.graphs: dict[tuple[int, int], Any] = {}
        self.replays = 0  # graph launches while serving (stats; the gpu tests assert on them)
        self.row_buckets = sorted({b for b in ROW_BUCKETS if b < max_rows} | {max_rows})
        self.widths = sorted({min(w, max_len) for w in range(width_step, max_len + width_step, width_step)})

    def bucket(self, rows: int, width: int) -> tuple[int, int]:
        padded_rows = next(b for b in self.row_buckets if b >= min(rows, self.max_rows))
        return padded_rows, padded_width(width, self.max_len, self.width_step)

    def buckets(self) -> list[tuple[int, int]]:
        return [(rows, width) for rows in self.row_buckets for width in self.widths]

    def capture_all(self) -> None:
        """Capture every bucket (at load, before any other thread touches the device)."""
        if self.capturer is None:
            return
        for rows, width in self.buckets():
            if (rows, width) not in self.graphs:
                self.graphs[rows, width] = self._capture(rows, width)

    def run(self, rows: int, width: int) -> None:
        key = self.bucket(rows, width)
        if self.capturer is None:
            self.step(*key)
            return
        graph = self.graphs.get(key)
        if graph is None:  # never capture while serving (see the module docstring)
            raise RuntimeError(f"no CUDA graph for bucket {key}: capture_all() must run at load")
        graph.replay()
        self.replays += 1

    def _capture(self, rows: int, width: int) -> Any:
        # Warm up, then put back the state the warm-up advanced: capture itself records without running.
        saved = [t.clone() for t in self.state]
        self.capturer.warm_up(lambda: self.step(rows, width))
        for tensor, copy in zip(self.state, saved):
            tensor.copy_(copy)
        return self.capturer.capture(lambda: self.step(rows, width))
