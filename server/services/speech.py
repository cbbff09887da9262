"""From a validated request to a stream of response bytes, independent of HTTP framing.

The service checks what every model shares (input length, language, output format), lets the
engine check the rest, and turns engine chunks into bytes: PCM chunks are resampled and encoded
here, pre-encoded chunks (a proxy already speaking the wire format) pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

from engines.base import EncodedChunk, Engine, OutputSpec, SynthesisRequest
from server.audio import CONTENT_TYPES, AudioWriter, check_output_supported
from server.engine_pool import EnginePool
from server.errors import InputTooLong, UnsupportedLanguage
from server.protocol import SpeechRequest
from server.settings import Settings


@dataclass
class PreparedSpeech:
    engine: Engine
    request: SynthesisRequest

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.request.output.format]


class SpeechService:
    def __init__(self, pool: EnginePool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def prepare(self, body: SpeechRequest) -> PreparedSpeech:
        """Resolve the engine and reject anything invalid before audio generation starts."""
        engine = self.pool.get_ready(body.model)
        request = body.to_synthesis()
        if len(request.text) > self.settings.max_input_chars:
            raise InputTooLong(
                f"input is {len(request.text)} characters; this server accepts at most "
                f"{self.settings.max_input_chars} (TTS_MAX_INPUT_CHARS)."
            )
        if request.language not in engine.languages:
            spoken = ", ".join(sorted(engine.languages))
            raise UnsupportedLanguage(
                f"Model '{engine.model_id}' does not speak '{request.language}'; it speaks: {spoken}."
            )
        request.output = self._effective_output(engine, request)
        check_output_supported(request.output)
        await engine.validate(request)
        return PreparedSpeech(engine, request)

    def _effective_output(self, engine: Engine, request: SynthesisRequest) -> OutputSpec:
        output = request.output
        if self.settings.hosted_compat and engine.hosted_ignores_output_options:
            # Hosted Together always answers Kokoro/Orpheus with 24 kHz 16-bit PCM.
            return dataclasses.replace(output, sample_rate=engine.sample_rate, encoding="pcm_s16le")
        if output.sample_rate is None:
            return dataclasses.replace(output, sample_rate=engine.sample_rate)
        return output

    async def audio_bytes(self, prepared: PreparedSpeech) -> AsyncIterator[bytes]:
        """Encoded audio, chunk by chunk. Closing this iterator cancels the engine's work."""
        output = prepared.request.output
        writer: AudioWriter | None = None
        passthrough = False
        async with contextlib.aclosing(prepared.engine.synthesize(prepared.request)) as chunks:
            async for chunk in chunks:
                if isinstance(chunk, EncodedChunk):
                    passthrough = True
                    if chunk.data:
                        yield chunk.data
                    continue
                writer = writer or AudioWriter(output, chunk.sample_rate)
                # Resampling and MP3 encoding of a long segment take milliseconds: not on the loop.
                data = await asyncio.to_thread(writer.write, chunk.samples)
                if data:
                    yield data
        if passthrough:
            return
        # No audio at all (e.g. input of only punctuation) still makes a valid, empty file.
        tail = await asyncio.to_thread((writer or AudioWriter(output, output.sample_rate)).close)
        if tail:
            yield tail
