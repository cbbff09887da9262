"""Small helpers shared by the Orpheus engine tests."""

from __future__ import annotations

import numpy as np

from engines.base import SynthesisRequest
from server.settings import ORPHEUS_MODEL


def request(text: str = "Hello world.", voice: str = "tara", seed: int | None = 1, language: str = "en",
            **sampling) -> SynthesisRequest:
    return SynthesisRequest(model=ORPHEUS_MODEL, text=text, voice=voice, seed=seed, language=language,
                            sampling=sampling)


async def synthesize(engine, *args, **kwargs) -> np.ndarray:
    chunks = []
    async for chunk in engine.synthesize(request(*args, **kwargs)):
        assert chunk.sample_rate == 24000 and chunk.samples.dtype == np.float32
        chunks.append(chunk.samples)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
