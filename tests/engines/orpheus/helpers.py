"""Small helpers shared by the Orpheus engine tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from engines.base import SynthesisRequest
from engines.orpheus.settings import ORPHEUS_MODEL
from engines.orpheus.tokens import AUDIO_BASE, CODEBOOK_SIZE


def audio_token_id(slot: int, code: int) -> int:
    """The vocabulary id of SNAC code ``code`` in slot ``slot`` of a 7-token frame."""
    return AUDIO_BASE + slot * CODEBOOK_SIZE + code


def request(
    text: str = "Hello world.", voice: str = "tara", seed: int | None = 1, language: str = "en", **sampling
) -> SynthesisRequest:
    return SynthesisRequest(
        model=ORPHEUS_MODEL, text=text, voice=voice, seed=seed, language=language, sampling=sampling
    )


async def synthesize(engine, *args, **kwargs) -> np.ndarray:
    chunks = []
    async for chunk in engine.synthesize(request(*args, **kwargs)):
        assert chunk.sample_rate == 24000 and chunk.samples.dtype == np.float32
        chunks.append(chunk.samples)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


async def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds: wait on observable state, never on a guessed duration."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)
