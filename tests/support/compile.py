"""A ``torch.compile`` stand-in that records its use and runs the function as it is.

For tests of a setting's wiring only (which calls go through ``torch.compile``, with which options);
the compiled paths themselves are checked with Inductor against eager output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def recording_compile(calls: list[dict[str, Any]]) -> Callable[..., Callable[..., Any]]:
    """``torch.compile`` replacement: each call of a "compiled" function appends its options to ``calls``."""

    def compile_fn(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
        def compiled(*args: Any) -> Any:
            calls.append(options)
            return fn(*args)

        return compiled

    return compile_fn
