"""Speed for models that have no rate control of their own: FFmpeg's ``atempo`` filter, streamed.

``atempo`` changes tempo without changing pitch (a WSOLA time-stretch). One instance takes factors
from 0.5 to 2; OpenAI's ``speed`` range (0.25-4) is reached by chaining two.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import numpy as np

from engines.base import WordTimings


def atempo_factors(speed: float) -> list[float]:
    factors: list[float] = []
    while speed > 2.0:
        factors.append(2.0)
        speed /= 2.0
    while speed < 0.5:
        factors.append(0.5)
        speed /= 0.5
    factors.append(speed)
    return factors


class TimeStretch:
    """16-bit mono PCM in, the same at ``speed`` times the tempo out, chunk by chunk."""

    def __init__(self, sample_rate: int, speed: float) -> None:
        import av
        from av.filter import Graph

        self._av = av
        self.speed = speed
        self._rate = sample_rate
        self._pts = 0
        self._odd = b""
        graph = Graph()
        node = graph.add_abuffer(format="s16", sample_rate=sample_rate, layout="mono", time_base=f"1/{sample_rate}")
        for factor in atempo_factors(speed):
            stage = graph.add("atempo", f"{factor:.6f}")
            node.link_to(stage)
            node = stage
        sink = graph.add("abuffersink")
        node.link_to(sink)
        graph.configure()
        self._graph = graph

    def write(self, pcm: bytes) -> bytes:
        pcm, self._odd = (self._odd + pcm), b""
        if len(pcm) % 2:  # an upstream chunk may split a sample: keep its first byte for the next call
            pcm, self._odd = pcm[:-1], pcm[-1:]
        samples = np.frombuffer(pcm, dtype="<i2")
        if not samples.size:
            return b""
        frame = self._av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += samples.size
        self._graph.push(frame)
        return self._pull()

    def close(self) -> bytes:
        self._graph.push(None)
        return self._pull()

    def _pull(self) -> bytes:
        out: list[bytes] = []
        while True:
            try:
                frame = self._graph.pull()
            except (self._av.error.BlockingIOError, self._av.error.EOFError):
                break
            out.append(frame.to_ndarray().astype("<i2").tobytes())
        return b"".join(out)


async def stretched(
    items: AsyncIterator[bytes | WordTimings], stretch: TimeStretch
) -> AsyncIterator[bytes | WordTimings]:
    """16-bit PCM items through ``stretch`` (off the event loop); word times move with the audio."""
    speed = stretch.speed
    async with contextlib.aclosing(items) as source:
        async for item in source:
            if isinstance(item, WordTimings):
                yield WordTimings(
                    [dataclasses.replace(w, start=w.start / speed, end=w.end / speed) for w in item.words]
                )
                continue
            data = await asyncio.to_thread(stretch.write, item)
            if data:
                yield data
    tail = await asyncio.to_thread(stretch.close)
    if tail:
        yield tail
