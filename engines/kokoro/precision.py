"""The precision Kokoro's decoder computes in: bf16 where the CPU does bf16 natively, else fp32.

The decoder and vocoder are 85-88% of a request's CPU time (README, "Where a request's time goes").
Under ``torch.autocast`` to bf16 their convolutions and matrix products run on a CPU's AMX tiles
(Intel Xeon 4th generation on): 1.2-1.3x eager fp32's audio per second eagerly, 1.8-1.9x compiled,
on 2 cores (``benchmarks/results/kokoro-cpu-defaults/``). The text/prosody front stays fp32 whatever
the setting, so durations, and with them the audio's length and word timings, are the fp32 model's.
Intelligibility is checked with Whisper on the real weights (``tests/e2e/test_cpu_defaults.py``). A
CPU without AMX would emulate bf16, slower than fp32: ``auto`` keeps fp32 there, and on CUDA (not yet
measured).
"""

from __future__ import annotations

import torch


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def decoder_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The dtype ``setting`` (``auto``, ``float32``, ``bfloat16``, ``float16``) means for a decoder on ``device``."""
    if setting == "auto":
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else torch.float32
    return getattr(torch, setting)
