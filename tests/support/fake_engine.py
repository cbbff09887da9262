"""A stand-in engine for the API layer's own tests (never used to test an engine).

It produces a known signal, so tests can check resampling, encodings and framing exactly, and it
can be told to fail mid-stream or to go slowly so disconnects and overload are observable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from engines.base import Engine, PcmChunk, SynthesisRequest, Voice
from server.errors import InternalError, InvalidVoice

RATE = 24000


def tone(n: int, start: int = 0, freq: float = 440.0) -> np.ndarray:
    t = (np.arange(start, start + n) / RATE).astype(np.float64)
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class FakeEngine(Engine):
    sample_rate = RATE
    languages = frozenset({"en", "fr"})

    def __init__(
        self,
        model_id: str = "hexgrad/Kokoro-82M",
        settings=None,
        *,
        chunks: int = 3,
        chunk_samples: int = 2400,
        delay_s: float = 0.0,
        fail_after: int | None = None,
    ) -> None:
        super().__init__(model_id, settings)
        self.chunks, self.chunk_samples, self.delay_s, self.fail_after = chunks, chunk_samples, delay_s, fail_after
        self.produced = 0
        self.started = 0
        self.closed_early = 0
        self.last_request: SynthesisRequest | None = None

    async def load(self) -> None:
        pass

    def voices(self) -> list[Voice]:
        return [Voice(id="alpha", name="alpha", language="en-US", gender="female")]

    async def validate(self, request: SynthesisRequest) -> None:
        if request.voice != "alpha":
            raise InvalidVoice(f"Unknown voice '{request.voice}'.")

    async def synthesize(self, request: SynthesisRequest) -> AsyncIterator[PcmChunk]:
        self.last_request = request
        self.started += 1
        finished = False
        try:
            for i in range(self.chunks):
                if self.fail_after is not None and i == self.fail_after:
                    raise InternalError("synthetic failure")
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                self.produced += 1
                yield PcmChunk(tone(self.chunk_samples, i * self.chunk_samples), RATE)
            finished = True
        finally:
            if not finished:
                self.closed_early += 1
