"""CUDA graphs for the decode step, one per bucket of rows and attention width.

A decode step of a small batch is dozens of small kernels per layer; launching them from Python
costs more than running them on a large GPU. A CUDA graph replays the whole step (forward, audio
head, sampling, state updates) as one launch. Graphs need fixed shapes and fixed memory, which the
slot cache gives: every tensor the step reads or writes is preallocated, and the step is captured
for ``rows`` rounded up to a bucket (the extra rows are free cache rows; whatever they compute is
never read, and a joining sequence resets its row) and ``width`` rounded up to a multiple of
``width_step`` columns (masked beyond each row's length).

Without ``capture`` (CPU) the same padded shapes run eagerly, so the CPU tests cover the padding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

ROW_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
#: Attention width granularity. Every decode step, with graphs or without, attends over its width rounded
#: up to this: a float reduction's result depends on how many columns it runs over (masked ones too), so
#: widths that differ by mode made a row's logits differ in the last bits, and sampling once turned that
#: into a different token. With one rounding for both, a row computes the same either way.
WIDTH_STEP = 256


def padded_width(width: int, max_len: int, step: int = WIDTH_STEP) -> int:
    return min(-(-width // step) * step, max_len)


class DecodeGraphs:
    def __init__(
        self,
        step: Callable[[int, int], None],
        max_rows: int,
        max_len: int,
        *,
        capture: bool,
        width_step: int = WIDTH_STEP,
        state: list[torch.Tensor] | None = None,
    ) -> None:
        self.step = step  # step(rows, width): decode and sample rows 0 .. rows-1 in place
        self.max_rows, self.max_len = max_rows, max_len
        self.capture = capture
        self.width_step = width_step
        self.state = state or []  # tensors a warm-up run changes, restored before capture
        self.graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self.pool = torch.cuda.graph_pool_handle() if capture else None

    def bucket(self, rows: int, width: int) -> tuple[int, int]:
        padded_rows = next((b for b in ROW_BUCKETS if b >= rows), rows)
        return min(padded_rows, self.max_rows), padded_width(width, self.max_len, self.width_step)

    def run(self, rows: int, width: int) -> None:
        key = self.bucket(rows, width)
        if not self.capture:
            self.step(*key)
            return
        graph = self.graphs.get(key)
        if graph is None:
            graph = self.graphs[key] = self._capture(*key)
        graph.replay()

    def _capture(self, rows: int, width: int) -> torch.cuda.CUDAGraph:
        # Warm up on a side stream (lazy cuBLAS/allocator setup must not happen during capture),
        # then put back the state the warm-up advanced: capture itself records without running.
        saved = [t.clone() for t in self.state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.step(rows, width)
        torch.cuda.current_stream().wait_stream(side)
        for tensor, copy in zip(self.state, saved):
            tensor.copy_(copy)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            self.step(rows, width)
        return graph
