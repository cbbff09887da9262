"""From a validated request to a stream of response bytes, independent of HTTP framing.

The service checks what every model shares (input length, language, output format), opens an
engine session (which checks the rest and plans the request once), feeds it the whole input and
commits. It then turns the session's events into bytes: PCM is resampled and encoded here unless
the engine already did it on its device, pre-encoded chunks (a proxy speaking the wire format)
pass through untouched, and word timings are handed on as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from engines.base import (
    BYTES_PER_SAMPLE,
    EncodedChunk,
    EncodedPcm,
    Engine,
    EngineSession,
    OutputSpec,
    PcmChunk,
    SessionParams,
    WordTimings,
    base_language,
    chunk_seconds,
)
from engines.errors import TTSError
from engines.pronunciation import Entry, from_extra_params, load_file, merge
from server.audio import CONTENT_TYPES, AudioWriter, check_output_supported
from server.engine_pool import EnginePool
from server.errors import Forbidden, InputTooLong, UnsupportedLanguage
from server.protocol import SpeechRequest
from server.request_log import current
from server.settings import Settings
from server.tenants import DEFAULT_TENANT, StreamSlot, Tenant, TenantLimiter


@dataclass
class PreparedSpeech:
    engine: Engine
    params: SessionParams
    session: EngineSession
    slot: StreamSlot | None = None  # the tenant's concurrent stream, released when the audio ends
    sent_seconds: float = 0.0  # audio whose bytes the consumer has taken (a client that left: what it got)
    first_audio_at: float | None = None  # time.monotonic() when the first audio bytes were taken
    done: bool = False  # every byte was sent (set by the transport that sent them)

    def release(self) -> None:
        if self.slot is not None:
            self.slot.release()

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.params.output.format]

    @property
    def output(self) -> OutputSpec:
        return self.params.output


class SpeechService:
    def __init__(
        self, pool: EnginePool, settings: Settings, metrics: Any = None, limiter: TenantLimiter | None = None
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics  # server/metrics.py (None in tools that use the service alone)
        self.limiter = limiter or TenantLimiter()
        # TTS_PRONUNCIATION_DICT, read once: a malformed file stops the server at startup.
        path = getattr(settings, "pronunciation_dict", None)
        self.server_pronunciations: tuple[Entry, ...] = load_file(path) if path else ()

    def pronunciations(self, extra_params: dict[str, Any] | None) -> tuple[Entry, ...]:
        """A request's (or websocket session's) ``extra_params.pronunciation_dict`` merged over the
        server-wide dictionary, its own entries winning; a malformed one is a 400 naming the field."""
        return merge(self.server_pronunciations, from_extra_params(extra_params))

    async def prepare(self, body: SpeechRequest) -> PreparedSpeech:
        """Resolve the engine, reject anything invalid, and start synthesis (open + feed + commit)."""
        engine = self.pool.get_ready(body.model)
        trace = current()
        if trace is not None:  # the request's log line: never the text itself, only its length
            trace.model, trace.voice, trace.chars = engine.model_id, body.voice, len(body.input)
        tenant = (trace.tenant if trace is not None else None) or DEFAULT_TENANT
        check_model(tenant, engine.model_id)
        if len(body.input) > self.settings.max_input_chars:
            raise InputTooLong(
                f"input is {len(body.input)} characters; this server accepts at most "
                f"{self.settings.max_input_chars} (TTS_MAX_INPUT_CHARS)."
            )
        slot = self.limiter.admit(tenant, len(body.input))  # 429 past a limit; holds a stream until the end
        try:
            return await self._start(engine, body, trace, tenant, slot)
        except BaseException:
            slot.release()
            raise

    async def _start(
        self, engine: Engine, body: SpeechRequest, trace: Any, tenant: Tenant, slot: StreamSlot
    ) -> PreparedSpeech:
        params = body.to_params()
        params.priority = tenant.priority
        params.pronunciations = self.pronunciations(body.extra_params)
        if trace is not None:
            params.request_id = trace.request_id  # the SSE item_id is the X-Request-ID
        params.output = self.effective_output(
            engine, params.output, explicit_encoding=body.encoding, keep_encoding=body.response_format == "mulaw"
        )
        try:
            session = await self.open(engine, params)
        except TTSError as exc:
            if exc.param == "word_timestamps" and not body.word_timestamps:
                exc.param = "alignment"  # name the field the client sent
            raise
        try:
            await session.feed(body.input)
            await session.commit()
        except BaseException:
            await session.close()
            raise
        return PreparedSpeech(engine, params, session, slot)

    async def open(self, engine: Engine, params: SessionParams) -> EngineSession:
        """The checks every model shares, then the engine's own (by opening its session)."""
        if base_language(params.language) not in engine.languages:
            spoken = ", ".join(sorted(engine.languages))
            raise UnsupportedLanguage(
                f"Model '{engine.model_id}' does not speak '{params.language}'; it speaks: {spoken} "
                "(and their lowercase locales, such as en-gb or pt-br)."
            )
        check_output_supported(params.output)
        return await engine.open_session(params)

    def effective_output(
        self, engine: Engine, output: OutputSpec, *, explicit_encoding: str | None, keep_encoding: bool = False
    ) -> OutputSpec:
        """Fill in the model's defaults; with ``hosted_compat``, override as hosted Together does.

        ``keep_encoding``: the response format itself fixes the encoding (``mulaw``), which then
        holds even with ``hosted_compat``.
        """
        if self.settings.hosted_compat and engine.hosted_ignores_output_options:
            # Hosted Together always answers Kokoro/Orpheus with 24 kHz 16-bit PCM.
            encoding = output.encoding if keep_encoding else "pcm_s16le"
            return dataclasses.replace(output, sample_rate=engine.sample_rate, encoding=encoding)
        if explicit_encoding is None:
            output = dataclasses.replace(output, encoding=engine.default_encoding)
        if output.sample_rate is None:
            output = dataclasses.replace(output, sample_rate=engine.sample_rate)
        return output

    async def audio_events(self, prepared: PreparedSpeech) -> AsyncIterator[bytes | WordTimings]:
        """Encoded audio chunk by chunk, and word timings where asked for. Closing this cancels the session.

        Audio counts (the request's trace, ``tts_audio_seconds``, the tenant's usage) once its bytes
        have been taken: the consumer asks for the next chunk only after sending the last, so a client
        that leaves mid-stream is counted the audio it was sent, not what the model had made.
        """
        trace = current()
        counter = self.metrics.audio.labels(prepared.engine.model_id) if self.metrics is not None else None

        def credit(seconds: float) -> None:
            if prepared.first_audio_at is None:
                prepared.first_audio_at = time.monotonic()
            prepared.sent_seconds += seconds
            if trace is not None:
                trace.audio_seconds += seconds
            if counter is not None:
                counter.inc(seconds)

        try:
            uncounted = 0.0
            async with contextlib.aclosing(self._encoded(prepared)) as encoded:
                async for data, seconds in encoded:
                    uncounted += seconds
                    if data is None:
                        continue
                    yield data
                    if uncounted and not isinstance(data, WordTimings):
                        credit(uncounted)
                        uncounted = 0.0
            if uncounted:  # the encoder's last bytes carried no new audio; the stream ended whole
                credit(uncounted)
        finally:
            prepared.release()

    async def _encoded(self, prepared: PreparedSpeech) -> AsyncIterator[tuple[bytes | WordTimings | None, float]]:
        """What to send, with the seconds of audio each event added (``None``: nothing to send yet)."""
        output = prepared.output
        writer: AudioWriter | None = None
        passthrough = False
        session = prepared.session
        async with contextlib.aclosing(session.events()) as events, session:
            async for event in events:
                seconds = chunk_seconds(event) or encoded_seconds(event, output)
                if isinstance(event, WordTimings):
                    yield event, 0.0
                    continue
                if isinstance(event, EncodedChunk):
                    passthrough = True
                    yield event.data or None, seconds
                    continue
                if not isinstance(event, PcmChunk | EncodedPcm):
                    continue  # SessionEnd
                writer = writer or AudioWriter(output, event.sample_rate)
                # Resampling and MP3 encoding of a long segment take milliseconds: not on the loop.
                data = await asyncio.to_thread(writer.write_chunk, event)
                yield data or None, seconds
        if passthrough:
            return
        # No audio at all (e.g. input of only punctuation) still makes a valid, empty file.
        tail = await asyncio.to_thread((writer or AudioWriter(output, output.sample_rate)).close)
        if tail:
            yield tail, 0.0


def encoded_seconds(event: object, output: OutputSpec) -> float:
    """Seconds in a pre-encoded chunk (a proxy's bytes), from the format: exact for PCM, nominal for MP3."""
    if not isinstance(event, EncodedChunk) or not output.sample_rate:
        return 0.0
    if output.format == "mp3":
        return len(event.data) * 8 / output.bit_rate
    return len(event.data) / BYTES_PER_SAMPLE[output.pcm_encoding] / output.sample_rate


def check_model(tenant: Tenant, model_id: str) -> None:
    """403 for a model outside the tenant's list (the model exists: hiding it would mislead operators)."""
    if not tenant.may_use(model_id):
        raise Forbidden(
            f"Tenant '{tenant.name}' may not use model '{model_id}'.", param="model", code="model_not_allowed"
        )
