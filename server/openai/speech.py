"""An OpenAI-style speech request, served by the same SpeechService as Together's.

The request becomes a Together-shaped one for the engine (24 kHz 16-bit PCM, streamed, which is
what OpenAI answers in every format), then the PCM is time-stretched where the model has no
speed control and put in the requested container (server/audio/containers.py).

* ``model``: OpenAI's names (``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts``...) map through
  ``openai_model_aliases``; any name this server knows works as it is.
* ``voice``: OpenAI's names map through the engine's own map (:attr:`Engine.openai_voices`; Kokoro's
  ``alloy`` -> ``af_alloy``) with the operator's ``openai_voices`` over it; a model's own voice names
  work as they are; ``{"id": ...}`` names a voice by id.
* ``speed``: natively where the engine honours it (:attr:`Engine.native_speed`), else by time-stretching.
* ``instructions``: whatever the engine makes of them (:meth:`Engine.instruction_prefix`: Orpheus's
  emotion tags at the start of the input); other models ignore instructions, as OpenAI's ``tts-1`` does.
No model names appear here: what differs between models is the engine's to say.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from engines.base import Engine, WordTimings
from server.audio.containers import ContainerEncoder, contained
from server.audio.tempo import TimeStretch, stretched
from server.openai.protocol import OpenAISpeechRequest
from server.protocol import SpeechRequest
from server.services.speech import PreparedSpeech, SpeechService

#: OpenAI's output rate, for every format.
OPENAI_RATE = 24000


@dataclass
class OpenAISpeech:
    """A started synthesis and how its PCM becomes the response."""

    prepared: PreparedSpeech
    items: AsyncIterator[bytes | WordTimings]  # 16-bit PCM at OPENAI_RATE (time-stretched if asked)
    encoder: ContainerEncoder
    input_chars: int
    pcm_bytes: int = 0

    @property
    def audio_seconds(self) -> float:
        return self.pcm_bytes / 2 / OPENAI_RATE

    async def encoded(self) -> AsyncIterator[bytes | WordTimings]:
        """Container bytes as the muxer releases them; counts the PCM on the way for usage."""

        async def counted() -> AsyncIterator[bytes | WordTimings]:
            async with contextlib.aclosing(self.items) as items:
                async for item in items:
                    if isinstance(item, bytes):
                        self.pcm_bytes += len(item)
                    yield item

        async for item in contained(counted(), self.encoder):
            yield item


class OpenAISpeechService:
    def __init__(self, speech: SpeechService) -> None:
        self.speech = speech
        self.settings = speech.settings

    def model_for(self, name: str) -> str:
        aliases = {k.lower(): v for k, v in self.settings.openai_model_aliases.items()}
        return aliases.get(name.strip().lower(), name)

    def voice_for(self, engine: Engine, voice: str) -> str:
        voices = {k.lower(): v for k, v in {**engine.openai_voices, **self.settings.openai_voices}.items()}
        return voices.get(voice.strip().lower(), voice)

    async def start(self, body: OpenAISpeechRequest) -> OpenAISpeech:
        engine = self.speech.pool.get_ready(self.model_for(body.model))
        stretch = body.speed != 1.0 and not engine.native_speed
        text = engine.instruction_prefix(body.instructions) + body.input
        request = SpeechRequest(
            model=engine.model_id,
            input=text,
            voice=self.voice_for(engine, body.voice_name),
            response_format="raw",
            response_encoding="pcm_s16le",
            sample_rate=OPENAI_RATE,
            stream=True,
            speed=1.0 if stretch else body.speed,
            seed=body.seed,
        )
        # Encoders first: if one cannot be built (an FFmpeg without the codec), no job was submitted.
        encoder = ContainerEncoder(body.response_format, OPENAI_RATE)
        try:
            stretcher = TimeStretch(OPENAI_RATE, body.speed) if stretch else None
            prepared = await self.speech.prepare(request)
        except BaseException:  # a refused request (busy, bad voice...) or a cancelled one frees FFmpeg's state
            encoder.discard()
            raise
        items = self.speech.audio_events(prepared)
        if stretcher is not None:
            items = stretched(items, stretcher)
        return OpenAISpeech(prepared, items, encoder, input_chars=len(body.input))
