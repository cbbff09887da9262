"""How a session's options become one item: its engine parameters, and the audio it sends.

An item's audio is the service's encoded PCM, time-stretched where the model has no rate control
of its own (Orpheus: FFmpeg's ``atempo``, as the OpenAI route does), then put in the session's
container (one file per item, released as the muxer finishes it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from engines.base import Engine, SessionParams, WordTimings
from server.audio.containers import ContainerEncoder, contained
from server.audio.tempo import TimeStretch, stretched
from server.errors import InvalidRequest, TTSError
from server.realtime.protocol import SessionOptions
from server.services.speech import PreparedSpeech, SpeechService


def tempo(engine: Engine, options: SessionOptions) -> float:
    """The speed the server applies itself (1.0 when the model speaks at the asked speed on its own)."""
    return 1.0 if engine.native_speed else options.speed


def item_params(service: SpeechService, engine: Engine, options: SessionOptions) -> SessionParams:
    """An item's parameters; with ``hosted_compat`` local models answer 24 kHz s16le, as hosted Together."""
    # Together's extra_params.pronunciation_dict over the server-wide dictionary (TTS_PRONUNCIATION_DICT).
    params = options.params(engine, service.pronunciations(options.extra_params))
    params.output = service.effective_output(engine, params.output, explicit_encoding=params.output.encoding)
    if tempo(engine, options) != 1.0:
        params.speed = 1.0  # stretched afterwards
    return params


async def validate(service: SpeechService, engine: Engine, options: SessionOptions) -> None:
    """Check options the way an item would use them (voice, language, rate...), without synthesizing."""
    if options.container is not None:
        try:  # the codec's own limits, e.g. Opus or MP3 at an unusual rate (a failed build frees itself)
            encoder = ContainerEncoder(options.container, options.sample_rate)
            try:
                encoder.close()
            finally:
                encoder.discard()
        except Exception as exc:
            raise InvalidRequest(
                f"response_format {options.container} cannot be encoded at {options.sample_rate} Hz: {exc}",
                param="sample_rate",
            ) from None
    params = item_params(service, engine, options)
    if tempo(engine, options) != 1.0 and params.output.encoding != "pcm_s16le":
        raise InvalidRequest(
            f"Model '{engine.model_id}' has no rate control; the server time-stretches its audio, which it "
            f"does for pcm_s16le and containers, not {params.output.encoding}.",
            param="speed",
        )
    try:
        session = await service.open(engine, params)
    except TTSError as exc:
        if exc.param == "word_timestamps" and not options.word_timestamps:
            exc.param = "alignment"  # name the parameter the client sent, as POST does
        raise
    await session.close()


def item_audio(
    service: SpeechService, prepared: PreparedSpeech, *, speed: float, container: str | None
) -> AsyncIterator[bytes | WordTimings]:
    """An item's deltas (bytes) and word timings, in the order they are sent."""
    audio = service.audio_events(prepared)
    rate = prepared.params.output.sample_rate
    if speed != 1.0:
        audio = stretched(audio, TimeStretch(rate, speed))
    if container is not None:
        audio = contained(audio, ContainerEncoder(container, rate))
    return audio
