"""Per-thread device binding and the memory a new engine may size itself by (``cuda:N`` safe).

Every thread that launches work on a GPU (a model's worker, Orpheus's codec stage) binds the
engine's device first: a thread's CUDA calls without an explicit device (``torch.cuda.Event``,
``current_stream()``, a graph's side stream, a library's workspace) go to *its* current device,
which is cuda:0 unless the thread says otherwise, while the model lives on cuda:N.
"""

from __future__ import annotations

import torch


def bind_thread(device: torch.device | str | None) -> None:
    """Make ``device`` the calling thread's current CUDA device (a no-op for CPU and None)."""
    if device is None:
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)


def free_memory(device: torch.device | str) -> int:
    """Bytes a new allocation on ``device`` can get: the driver's free memory plus what PyTorch's
    caching allocator holds reserved but unused (after an engine restart, the old engine's blocks
    sit there: the driver counts them as taken, yet they are ours to reuse)."""
    device = torch.device(device)
    free, _ = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return free + max(0, cached)
