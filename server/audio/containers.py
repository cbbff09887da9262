"""OpenAI's response formats (mp3, opus, aac, flac, wav, pcm) as real containers, streamed as produced.

FFmpeg's own encoders and muxers do the work, through PyAV: LAME in MP3, libopus in Ogg, FFmpeg's
AAC in ADTS, FLAC, and 16-bit PCM in WAV. The input is 16-bit mono PCM (what SpeechService yields
for ``raw``/``pcm_s16le``); each :meth:`ContainerEncoder.write` returns the container bytes the
muxer has finished so far, so a response can send them while synthesis goes on.

Two formats need their length in a header. WAV streams anyway with the "unknown length" sizes
(0xFFFFFFFF) that FFmpeg writes to a pipe, which FFmpeg, libsndfile and browsers all read. FLAC's
STREAMINFO would say "length unknown" too, which libsndfile (``soundfile``) cannot read, so FLAC is
written whole into a seekable buffer and sent once complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from engines.base import WordTimings


@dataclass(frozen=True)
class ContainerSpec:
    muxer: str | None  # None: raw PCM, no container
    codec: str | None
    content_type: str
    streams: bool  # bytes can leave before the end
    bit_rate: int | None = None
    options: tuple[tuple[str, str], ...] = ()


FORMATS: dict[str, ContainerSpec] = {
    "mp3": ContainerSpec("mp3", "libmp3lame", "audio/mpeg", True, 128000),
    # Ogg pages are flushed every 100 ms of audio instead of FFmpeg's default second.
    "opus": ContainerSpec("ogg", "libopus", "audio/ogg", True, 64000, (("page_duration", "100000"),)),
    "aac": ContainerSpec("adts", "aac", "audio/aac", True, 96000),
    "flac": ContainerSpec("flac", "flac", "audio/flac", False),
    "wav": ContainerSpec("wav", "pcm_s16le", "audio/wav", True),
    "pcm": ContainerSpec(None, None, "audio/pcm", True),
}


class _Sink:
    """A write-only file for the muxer: not seekable, so FFmpeg writes a streamable layout."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class ContainerEncoder:
    """One audio file in ``fmt``: ``write(s16 bytes)`` -> bytes ready now, ``close()`` -> the rest.

    ``discard()`` frees FFmpeg's state without finishing the file (a stream that stopped early); it is
    idempotent and safe after ``close()``, so owners call it in ``finally``. A lock keeps it from
    tearing the muxer down under a ``write`` still running on a worker thread.
    """

    def __init__(self, fmt: str, sample_rate: int) -> None:
        import av  # imported here: only OpenAI-style requests and realtime containers need FFmpeg

        self.spec = FORMATS[fmt]
        self.sample_rate = sample_rate
        self._pts = 0
        self._odd = b""
        self._av = av
        self._lock = threading.Lock()
        self._container = None
        if self.spec.muxer is None:
            return
        self._sink = _Sink() if self.spec.streams else None
        self._buffer = None if self.spec.streams else io.BytesIO()
        self._container = av.open(
            self._sink if self._sink is not None else self._buffer,
            mode="w",
            format=self.spec.muxer,
            options=dict(self.spec.options),
        )
        try:  # a codec that refuses the rate or layout must not leave the muxer open
            self._stream = self._container.add_stream(self.spec.codec, rate=sample_rate, layout="mono")
            if self.spec.bit_rate:
                self._stream.bit_rate = self.spec.bit_rate
        except BaseException:
            self.discard()
            raise

    @property
    def closed(self) -> bool:
        """No FFmpeg state is held (finished, discarded, or raw PCM, which never had any)."""
        return self._container is None

    @property
    def content_type(self) -> str:
        return self.spec.content_type

    def write(self, pcm: bytes) -> bytes:
        if self.spec.muxer is None:
            return pcm
        with self._lock:
            if self._container is None:
                raise RuntimeError("the encoder is closed")
            return self._write(pcm)

    def _write(self, pcm: bytes) -> bytes:
        pcm, self._odd = (self._odd + pcm), b""
        if len(pcm) % 2:  # an upstream chunk may split a sample: keep its first byte for the next call
            pcm, self._odd = pcm[:-1], pcm[-1:]
        samples = np.frombuffer(pcm, dtype="<i2")
        if samples.size:
            frame = self._av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._pts
            self._pts += samples.size
            # PyAV re-frames and converts for the codec (e.g. 1024-sample float planes for AAC).
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._take()

    def close(self) -> bytes:
        with self._lock:
            if self._container is None:
                return b""
            try:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            finally:
                container, self._container = self._container, None
                container.close()
            if self._buffer is not None:
                return self._buffer.getvalue()
            return self._sink.take()

    def discard(self) -> None:
        with self._lock:
            container, self._container = self._container, None
            if container is not None:
                with contextlib.suppress(Exception):  # the file is abandoned: only the freeing matters
                    container.close()

    def _take(self) -> bytes:
        return self._sink.take() if self._sink is not None else b""


async def contained(
    items: AsyncIterator[bytes | WordTimings], encoder: ContainerEncoder
) -> AsyncIterator[bytes | WordTimings]:
    """16-bit PCM items -> the container's bytes as the muxer releases them; word timings pass through.

    Encoding runs off the event loop (an AAC or Opus frame costs real CPU time). Closing this
    iterator closes ``items`` (and so cancels the synthesis behind it) and frees the encoder, as does
    a failure on either side: the encoder never outlives the stream.
    """
    try:
        async with contextlib.aclosing(items) as source:
            async for item in source:
                if isinstance(item, WordTimings):
                    yield item
                    continue
                data = await asyncio.to_thread(encoder.write, item)
                if data:
                    yield data
        tail = await asyncio.to_thread(encoder.close)
    finally:
        encoder.discard()
    if tail:
        yield tail
