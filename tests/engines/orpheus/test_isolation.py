"""Orpheus failure isolation and validation: a failing row or codec window fails its request only.

The probe found ``temperature: 1e-40`` (0 in float32) passing validation and the step then failing
with ``index -1 is out of bounds``, taking every stream in the batch with it. Now such values are
a 400, sampling can never pick "no token", and per-request failures stay with their request.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from engines.errors import InternalError, InvalidRequest
from engines.orpheus import scheduler as scheduler_module
from engines.orpheus.sampling import SamplingParams, sample_columns
from tests.engines.orpheus.helpers import synthesize

GOOD = [
    {"text": "Hello world.", "voice": "tara", "seed": 11, "max_tokens": 35},
    {"text": "A different prompt for leo.", "voice": "leo", "seed": 12, "max_tokens": 28},
]
BAD = {"text": "Poisoned words.", "voice": "zoe", "seed": 13, "max_tokens": 35}


@pytest.mark.parametrize(
    "override",
    [
        {"temperature": 1e-40},
        {"top_p": 1e-46},
        {"temperature": float("nan")},
        {"top_p": float("inf")},
        {"repetition_penalty": 1.0},
        {"repetition_penalty": 3.0},
    ],
)
def test_sampling_parameters_outside_safe_ranges_are_rejected(orpheus_settings, override):
    with pytest.raises(InvalidRequest) as err:
        SamplingParams.resolve(orpheus_settings.orpheus, override)
    assert err.value.param == next(iter(override))


def test_sampling_always_keeps_a_token_whatever_top_p():
    scores = torch.randn(3, 4097)
    columns = sample_columns(
        scores,
        torch.zeros(3, 4096, dtype=torch.bool),
        torch.tensor([1.0, 0.6, 1.0]),
        torch.tensor([0.0, 1e-30, 0.8]),  # 0 and tiny: before, "keep nothing" and an index of -1
        torch.tensor([1.3, 1.3, 1.3]),
        torch.tensor([0.0, 0.5, 0.999]),
    )
    assert columns[0] == scores[0].argmax() and columns[1] == scores[1].argmax()


async def solo(make_engine) -> list[np.ndarray]:
    engine = await make_engine(max_batch_size=4)
    return [await synthesize(engine, **case) for case in GOOD]


async def together(engine) -> list:
    return await asyncio.gather(
        synthesize(engine, **GOOD[0]), synthesize(engine, **BAD), synthesize(engine, **GOOD[1]), return_exceptions=True
    )


def assert_isolated(results, alone) -> None:
    assert isinstance(results[1], InternalError), results[1]
    for expected, got in zip(alone, (results[0], results[2])):
        assert isinstance(got, np.ndarray) and got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


async def test_a_failing_prefill_fails_its_request_only(make_engine, monkeypatch):
    alone = await solo(make_engine)
    prompt_ids = scheduler_module.prompt_ids

    def poisoned(tokenizer, voice, text):
        if "Poisoned" in text:
            raise RuntimeError("prompt broke")
        return prompt_ids(tokenizer, voice, text)

    monkeypatch.setattr(scheduler_module, "prompt_ids", poisoned)
    engine = await make_engine(max_batch_size=4, max_wait_ms=200.0)
    assert_isolated(await together(engine), alone)
    assert engine.health() is None


async def test_a_failing_row_mid_generation_fails_its_request_only(make_engine, monkeypatch):
    alone = await solo(make_engine)
    engine = await make_engine(max_batch_size=4, max_wait_ms=200.0)
    accept = engine.scheduler._accept

    def poisoned(row, token, items):
        if "Poisoned" in row.segment.text and len(row.segment.tokens) >= 14:
            raise RuntimeError("row broke")
        return accept(row, token, items)

    monkeypatch.setattr(engine.scheduler, "_accept", poisoned)
    results = await together(engine)
    assert_isolated(results, alone)
    assert engine.health() is None and engine.stats()["lm_rows"] == 0


async def test_a_failing_codec_window_fails_its_request_only(make_engine, monkeypatch):
    alone = await solo(make_engine)
    engine = await make_engine(max_batch_size=4, max_wait_ms=200.0, orpheus_codec_batching="on")
    codec = engine.codec.codec
    decode = codec.decode
    bad_seeds: set[int] = set()

    def poisoned(windows):
        if any(w.noise_seed in bad_seeds for w in windows):
            raise RuntimeError("window broke")
        return decode(windows)

    monkeypatch.setattr(codec, "decode", poisoned)
    submit = engine.codec.submit

    def note_bad(items):
        for item in items:
            if "Poisoned" in item.segment.text:
                bad_seeds.add(item.window.window.noise_seed)
        submit(items)

    monkeypatch.setattr(engine.codec, "submit", note_bad)
    assert_isolated(await together(engine), alone)
    assert engine.health() is None
