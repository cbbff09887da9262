"""``kokoro_compile``'s fallback to eager, which needs no compiler to test.

The compiled path itself (Inductor on this CPU) is checked against eager audio in
test_batched_forward.py; the engine setting in test_engine.py.
"""

from __future__ import annotations

import logging

import pytest
import torch

from engines.kokoro import compiled as compiled_module
from engines.kokoro.batched_norm import TimeMask, adain_res_block1
from engines.kokoro.compiled import CompiledResblock
from engines.kokoro.loader import load_kmodel


@pytest.fixture(scope="module")
def block_and_input(kokoro_dir):
    generator = load_kmodel(kokoro_dir, "cpu").decoder.generator
    block = generator.resblocks[0]
    channels = block.convs1[0].in_channels
    x = torch.randn(2, channels, 300, generator=torch.Generator().manual_seed(0))
    style = torch.randn(2, 128, generator=torch.Generator().manual_seed(1))
    mask = TimeMask.build([300, 170], 300, torch.device("cpu"))
    x = mask.apply(x)
    return block, x, style, mask


def broken_compile(calls: list[str]):
    def compile_fn(fn, **options):
        def compiled(*args):
            calls.append("compiled")
            raise RuntimeError("C++ compile failed: no such file 'cc'\nlong compiler log")

        return compiled

    return compile_fn


def test_a_compiler_failure_falls_back_to_eager_once_and_for_good(block_and_input, caplog):
    block, x, style, mask = block_and_input
    calls: list[str] = []
    resblock = CompiledResblock(compile_fn=broken_compile(calls))
    assert resblock.active
    with torch.inference_mode(), caplog.at_level(logging.WARNING):
        expected = adain_res_block1(block, x, style, mask)
        first = resblock(block, x, style, mask)
        second = resblock(block, x, style, mask)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert calls == ["compiled"]  # not retried
    assert not resblock.active and resblock.fallback_reason == "RuntimeError: C++ compile failed: no such file 'cc'"
    assert sum("running eagerly" in r.message for r in caplog.records) == 1


def test_an_error_eager_also_raises_is_not_blamed_on_the_compiler(block_and_input, monkeypatch):
    block, x, style, mask = block_and_input
    calls: list[str] = []
    resblock = CompiledResblock(compile_fn=broken_compile(calls))

    def out_of_memory(*args):
        raise torch.OutOfMemoryError("out of memory")

    monkeypatch.setattr(compiled_module, "adain_res_block1", out_of_memory)
    with torch.inference_mode(), pytest.raises(torch.OutOfMemoryError):
        resblock(block, x, style, mask)
    assert resblock.active and resblock.fallback_reason is None  # compiling stays on
