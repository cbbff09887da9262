"""``torch.compile`` for the vocoder's resblocks, with a clean fallback to eager.

Where the decoder spends its time: the iSTFTNet generator's Snake resblocks (``AdaINResBlock1``, the
three kernel sizes of each upsampling stage, and the ``noise_res`` blocks) run at 120 steps per frame.
Eagerly each Snake, masked instance norm and AdaIN is its own memory-bound pass over a ``[B, C, W]``
tensor; compiled, Inductor fuses them around the convolutions (measured on this 2-core CPU: one
128-channel block 0.14 s -> 0.10 s at B = 4, 4,800 steps; the fusion matters more on a GPU).

Shapes: compiled with ``dynamic=True``, so one graph per resblock structure serves every batch
size and width (static shapes would compile again for each of them, without bound on a server). Masks
are passed as tensors and never read as Python ints inside the compiled code, so items' real lengths
cause no recompilation either.

Fallback: if compiling fails (no C++ compiler for CPU Inductor, an unsupported op in a new kokoro
release), the failure is logged once and every later call runs eagerly; the call that failed is
rerun eagerly, so a request never sees a compiler error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn as nn

from engines.kokoro.batched_norm import TimeMask, adain_res_block1
from engines.kokoro.batched_vocoder import Resblock

logger = logging.getLogger(__name__)

# Variants per resblock structure (3 kernel sizes x 2 stages, 2 noise blocks, padded or not) can
# exceed dynamo's default of 8 per function; past the limit it would silently run eagerly.
RECOMPILE_LIMIT = 64


class CompiledResblock:
    """A drop-in for :func:`adain_res_block1` that runs it through ``torch.compile``."""

    def __init__(self, compile_fn: Callable[..., Resblock] | None = None) -> None:
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
        # dynamic: one compiled graph serves every batch size and width (no recompile per shape).
        self._compiled: Resblock | None = (compile_fn or torch.compile)(adain_res_block1, dynamic=True)
        self.fallback_reason: str | None = None

    @property
    def active(self) -> bool:
        return self._compiled is not None

    def __call__(self, block: nn.Module, x: torch.Tensor, style: torch.Tensor, mask: TimeMask) -> torch.Tensor:
        if self._compiled is None:
            return adain_res_block1(block, x, style, mask)
        try:
            return self._compiled(block, x, style, mask)
        except Exception as exc:
            out = adain_res_block1(block, x, style, mask)  # fails too (e.g. out of memory): not the compiler's fault
            self._compiled = None
            self.fallback_reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            logger.warning("Kokoro: torch.compile failed, running eagerly from now on (%s)", self.fallback_reason)
            return out
