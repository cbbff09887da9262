"""``CompiledFn``'s fallback to eager, which needs no compiler to test.

The compiled paths themselves (Inductor on this CPU) are checked against eager output where they are
used: Kokoro's vocoder in tests/engines/kokoro/test_batched_forward.py, SNAC in
tests/engines/orpheus/test_codec_stage.py.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from engines.compiled import CompiledFn


def snake_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.conv1d(x + torch.sin(x).square(), weight, padding=1)


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 50, generator=generator), torch.randn(4, 4, 3, generator=generator)


def broken_compile(calls: list[dict]):
    def compile_fn(fn, **options):
        def compiled(*args):
            calls.append(options)
            raise RuntimeError("C++ compile failed: no such file 'cc'\nlong compiler log")

        return compiled

    return compile_fn


def test_a_compiler_failure_falls_back_to_eager_once_and_for_good(inputs, caplog):
    calls: list[dict] = []
    fn = CompiledFn(snake_conv, "test block", compile_fn=broken_compile(calls))
    assert fn.active
    with caplog.at_level(logging.WARNING):
        first, second = fn(*inputs), fn(*inputs)
    expected = snake_conv(*inputs)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert calls == [{"dynamic": True}]  # compiled for every shape at once, and not retried
    assert not fn.active and fn.fallback_reason == "RuntimeError: C++ compile failed: no such file 'cc'"
    assert sum("test block: torch.compile failed" in r.message for r in caplog.records) == 1


def test_an_error_eager_also_raises_is_not_blamed_on_the_compiler(inputs):
    x, weight = inputs
    fn = CompiledFn(snake_conv, "test block", compile_fn=broken_compile([]))
    with pytest.raises(RuntimeError, match="channels|size|shape"):
        fn(x, weight[:, :3])  # wrong in eager too
    assert fn.active and fn.fallback_reason is None  # compiling stays on
