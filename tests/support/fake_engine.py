"""A stand-in engine for the API layer's own tests (never used to test an engine).

It produces a known signal, so tests can check resampling, encodings and framing exactly, and it
can be told to fail mid-stream or to go slowly so disconnects and overload are observable. Asked
for word timestamps, it times each input word at 0.1 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from engines.base import (
    Engine,
    EngineSession,
    PcmChunk,
    SessionEnd,
    SessionEvent,
    SessionParams,
    Voice,
    WordTiming,
    WordTimings,
)
from engines.errors import InternalError, InvalidVoice

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
        self.last_request: SessionParams | None = None
        self.last_text = ""
        self.committed_texts: list[str] = []  # every session's text at its commit, in order

    async def load(self) -> None:
        pass

    def voices(self) -> list[Voice]:
        return [Voice(id="alpha", name="alpha", language="en-US", gender="female")]

    async def open_session(self, params: SessionParams) -> FakeSession:
        if params.voice != "alpha":
            raise InvalidVoice(f"Unknown voice '{params.voice}'.")
        self.last_request = params
        return FakeSession(self, params)


class FakeSession(EngineSession):
    def __init__(self, engine: FakeEngine, params: SessionParams) -> None:
        super().__init__(params)
        self.engine = engine
        self.text: list[str] = []
        self.committed = asyncio.Event()

    async def feed(self, text: str) -> None:
        self.text.append(text)

    async def commit(self) -> None:
        self.engine.last_text = "".join(self.text)
        self.engine.committed_texts.append(self.engine.last_text)
        self.committed.set()

    async def clear(self) -> None:
        self.text.clear()

    async def close(self) -> None:
        self.committed.set()

    async def events(self) -> AsyncIterator[SessionEvent]:
        await self.committed.wait()
        engine = self.engine
        engine.started += 1
        finished = False
        try:
            if self.params.word_timestamps:
                words = self.engine.last_text.split()
                yield WordTimings([WordTiming(w, 0.1 * i, 0.1 * (i + 1)) for i, w in enumerate(words)])
            for i in range(engine.chunks):
                if engine.fail_after is not None and i == engine.fail_after:
                    raise InternalError("synthetic failure")
                if engine.delay_s:
                    await asyncio.sleep(engine.delay_s)
                engine.produced += 1
                n = engine.chunk_samples
                yield PcmChunk(tone(n, i * n), RATE, i * n)
            finished = True
            yield SessionEnd()
        finally:
            if not finished:
                engine.closed_early += 1
