"""Together's realtime TTS websocket (``GET /v1/audio/speech/websocket``): session options and events.

Client events: ``tts_session.updated`` (``{"session": {...}}``, any of the options below),
``input_text_buffer.append`` (``{"text"}``), ``input_text_buffer.commit``, ``input_text_buffer.clear``.
Server events: ``session.created`` (first), ``session.updated`` (after each accepted update),
``conversation.item.input_text.received``, ``conversation.item.audio_output.delta`` (``item_id``,
base64 ``delta``), ``conversation.item.word_timestamps`` (with ``alignment=word``),
``conversation.item.audio_output.done``, ``conversation.item.tts.failed`` (``error`` in Together's
error shape; ``item_id`` when one item failed), and ``input_text_buffer.cleared`` (an extension).

Options come from the query string at connect and from ``tts_session.updated`` later. Together's:
``model``, ``voice``, ``max_partial_length``, ``language`` (lowercase locales), ``speed``,
``alignment`` (``word``/``none``), ``response_format`` (``pcm``/``raw``, the default, or a container:
``mp3``, ``opus``, ``aac``, ``flac``, ``wav``; each item's deltas joined make one file, sent as the
muxer releases it), ``sample_rate`` (default 24000), ``segment`` and, in ``tts_session.updated`` only,
``extra_params.pronunciation_dict``. This server's extensions: ``response_encoding`` (raw PCM only;
default ``pcm_s16le``), ``seed``, ``word_timestamps`` (same as ``alignment=word``).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engines.base import Engine, OutputSpec, SegmentMode, SessionParams, WordTiming
from engines.registry import DEFAULT_MODEL
from server.errors import TTSError, error_body
from server.protocol import Language, word_timestamps_event

#: Together's realtime audio: raw 16-bit PCM at 24 kHz, unless the session asks otherwise.
DEFAULT_RATE = 24000
RAW_FORMATS = frozenset({"raw", "pcm"})
#: Voices used when the client names none, in order of preference (Together's docs default to tara).
DEFAULT_VOICES = ("af_heart", "tara")


class SessionOptions(BaseModel):
    """Everything a connection's next items are synthesized with."""

    model_config = ConfigDict(extra="ignore")  # unknown fields are ignored, as on POST

    model: str = Field(DEFAULT_MODEL, min_length=1)
    voice: str | None = Field(None, min_length=1)
    max_partial_length: int = Field(250, ge=1, le=4096)
    language: Language = "en"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    alignment: Literal["word", "none"] = "none"
    word_timestamps: bool = False
    response_format: Literal["raw", "pcm", "mp3", "opus", "aac", "flac", "wav"] = "raw"
    response_encoding: Literal["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"] = "pcm_s16le"
    sample_rate: int = Field(DEFAULT_RATE, ge=8000, le=48000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    segment: SegmentMode = "sentence"
    # Together's model-specific extras; ``pronunciation_dict`` is read (parsed by the service when an
    # update arrives, so a malformed entry is a 400 naming ``extra_params.pronunciation_dict``).
    extra_params: dict[str, Any] | None = None

    @property
    def wants_words(self) -> bool:
        return self.word_timestamps or self.alignment == "word"

    @property
    def container(self) -> str | None:
        """The container each item's audio goes into, or None for raw PCM deltas."""
        return None if self.response_format in RAW_FORMATS else self.response_format

    def output(self) -> OutputSpec:
        # Containers are built from 16-bit PCM by server/audio/containers.py.
        encoding = self.response_encoding if self.container is None else "pcm_s16le"
        return OutputSpec(format="raw", encoding=encoding, sample_rate=self.sample_rate, stream=True)

    def params(self, engine: Engine, pronunciations: tuple[tuple[str, str], ...] = ()) -> SessionParams:
        return SessionParams(
            model=engine.model_id,
            voice=self.voice or default_voice(engine),
            language=self.language,
            output=self.output(),
            speed=self.speed,
            seed=self.seed,
            word_timestamps=self.wants_words,
            max_partial_chars=self.max_partial_length,
            segment=self.segment,
            pronunciations=pronunciations,
        )

    def public(self, engine: Engine, session_id: str, output: OutputSpec | None = None) -> dict[str, Any]:
        """The ``session`` object of session.created / session.updated; ``output``: what items will
        really carry (e.g. 24 kHz s16le for local models under ``TTS_HOSTED_COMPAT``)."""
        output = output or self.output()
        return {
            "id": session_id,
            "object": "realtime.tts.session",
            "modalities": ["text", "audio"],
            "model": engine.model_id,
            "voice": self.voice or default_voice(engine),
            "max_partial_length": self.max_partial_length,
            "language": self.language,
            "speed": self.speed,
            "alignment": "word" if self.wants_words else "none",
            "response_format": self.response_format,
            "response_encoding": output.encoding,
            "sample_rate": output.sample_rate,
            "segment": self.segment,
            "extra_params": self.extra_params or {},
        }


def default_voice(engine: Engine) -> str:
    ids = [v.id for v in engine.voices()]
    for name in DEFAULT_VOICES:
        if name in ids:
            return name
    return ids[0] if ids else "default"


# -- server events ---------------------------------------------------------------------------
def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"evt_{uuid.uuid4().hex[:16]}", "type": kind, **fields}


def session_created(session: dict[str, Any]) -> dict[str, Any]:
    return _event("session.created", session=session)


def session_updated(session: dict[str, Any]) -> dict[str, Any]:
    return _event("session.updated", session=session)


def text_received(text: str, item_id: str) -> dict[str, Any]:
    return _event("conversation.item.input_text.received", text=text, item_id=item_id)


def audio_delta(item_id: str, b64: str) -> dict[str, Any]:
    return _event("conversation.item.audio_output.delta", item_id=item_id, delta=b64)


def audio_done(item_id: str) -> dict[str, Any]:
    return _event("conversation.item.audio_output.done", item_id=item_id)


def word_timestamps(item_id: str, words: list[WordTiming]) -> dict[str, Any]:
    """Together's shape: ``words``, ``start_seconds``, ``end_seconds`` as parallel arrays."""
    event = word_timestamps_event(item_id, words)  # the one builder, shared with SSE streams
    return _event(event.pop("type"), **event)


def buffer_cleared(item_id: str | None) -> dict[str, Any]:
    return _event("input_text_buffer.cleared", item_id=item_id)


def tts_failed(error: TTSError, item_id: str | None = None) -> dict[str, Any]:
    return _event("conversation.item.tts.failed", item_id=item_id, **error_body(error))
