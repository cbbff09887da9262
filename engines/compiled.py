"""``torch.compile`` behind a setting, with a clean fallback to eager.

Used where eager PyTorch spends its time in memory-bound passes that Inductor can fuse around the
convolutions: Kokoro's vocoder resblocks (``kokoro_compile``; each masked instance norm, AdaIN and
Snake is its own pass over a ``[B, C, W]`` tensor eagerly) and SNAC's decoder (``orpheus_codec_compile``,
Snake activations and noise blocks between its transposed convolutions).

Shapes: compiled with ``dynamic=True``, so one graph serves every batch size and length (static
shapes would compile again for each of them, without bound on a server). Inputs that change per
call (masks, noise) are tensors, never Python numbers read inside the compiled code, so they cause
no recompilation.

Fallback: if compiling fails (no C++ compiler for CPU Inductor, an op a new library release adds),
the failure is logged once and every later call runs eagerly; the call that failed is rerun
eagerly, so a request never sees a compiler error. An error that the eager call raises as well
(out of memory) is not the compiler's: it propagates and compiling stays on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

# Variants per function (block structures, padded or not, batch sizes 1 and more) can exceed
# dynamo's default of 8; past the limit it would silently run eagerly.
RECOMPILE_LIMIT = 64


class CompiledFn:
    """``fn`` through ``torch.compile`` (``compile_fn``, for tests), falling back to ``fn`` for good."""

    def __init__(self, fn: Callable[..., Any], name: str, compile_fn: Callable[..., Any] | None = None) -> None:
        import torch._dynamo.config as dynamo_config

        limit = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"  # torch < 2.7
        setattr(dynamo_config, limit, max(getattr(dynamo_config, limit), RECOMPILE_LIMIT))
        self.fn, self.name = fn, name
        self._compiled: Callable[..., Any] | None = (compile_fn or torch.compile)(fn, dynamic=True)
        self.fallback_reason: str | None = None

    @property
    def active(self) -> bool:
        """Compiled, not fallen back."""
        return self._compiled is not None

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None:
            return self.fn(*args)
        try:
            return self._compiled(*args)
        except Exception as exc:
            out = self.fn(*args)  # raises too (e.g. out of memory): not the compiler's fault
            self._compiled = None
            self.fallback_reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            logger.warning(
                "%s: torch.compile failed, running eagerly from now on (%s)", self.name, self.fallback_reason
            )
            return out
