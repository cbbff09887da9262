"""Pydantic schemas of the HTTP API, as Together defines them (plus clearly marked extensions)."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from engines.base import OutputSpec, SegmentMode, SessionParams, WordTiming

_LOCALE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")


def _lowercase_locale(value: str) -> str:
    if not _LOCALE.fullmatch(value):
        raise ValueError("must be a lowercase language code or locale, such as en, en-gb, pt-br or zh-hk")
    return value


# Together's language codes (en, de, fr, ...) and lowercase locales ("locales are supported and must be
# lowercase"). Whether the model speaks it is checked against the model (a 400 naming its languages).
Language = Annotated[str, AfterValidator(_lowercase_locale)]


class SpeechRequest(BaseModel):
    """Body of ``POST /v1/audio/speech``."""

    # Unknown fields are ignored, as Together does: SDKs add fields over time.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, description="The model: a served model's name or alias (GET /v1/models).")
    input: str = Field(
        min_length=1, description="The text to speak (at most TTS_MAX_INPUT_CHARS characters, 4096 by default)."
    )
    voice: str = Field(
        min_length=1,
        description="A voice of the model (GET /v1/voices); Kokoro also mixes voices: af_bella(2)+af_heart(1).",
    )
    response_format: Literal["mp3", "wav", "raw", "mulaw"] = Field(
        "wav",
        description="wav (16-bit), mp3, raw PCM in response_encoding, or mulaw (raw G.711 mu-law bytes at the "
        "model's rate unless sample_rate says otherwise). Streams carry raw or mulaw.",
    )
    language: Language = Field(
        "en",
        description="Together's language code or a lowercase locale (en-us, en-gb, pt-br, zh-hk); a model that "
        "cannot speak it is a 400. Kokoro: en-us and en-gb pick American or British pronunciation.",
    )
    # Absent means the model's default: pcm_s16le for Kokoro and Orpheus (what hosted Together
    # always answers for them), pcm_f32le (the spec's default) for Cartesia.
    response_encoding: Literal["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"] | None = Field(
        None, description="PCM encoding of raw output and of streams (default: the model's, pcm_s16le locally)."
    )
    # Absent means the model's native rate (24000 for Kokoro and Orpheus, 44100 for Sonic).
    # Strict types where Together's schema has them: "24000" or true are 400s, not coerced.
    sample_rate: int | None = Field(
        None, ge=8000, le=48000, strict=True, description="Output rate in Hz (default: the model's native rate)."
    )
    bit_rate: Literal[32000, 64000, 96000, 128000, 192000] = Field(128000, description="MP3 bit rate in bit/s.")
    stream: bool = Field(
        False, strict=True, description="Stream server-sent events (raw or mulaw): audio chunks as they are made."
    )
    alignment: Literal["word", "none"] = Field(
        "none",
        description="word: word timestamps (Kokoro English, Cartesia; Orpheus: 400). Streams send "
        "conversation.item.word_timestamps events; without stream the answer is JSON with audio and words.",
    )
    segment: SegmentMode = Field(
        "sentence",
        description="How the text is cut before synthesis: sentence (default), immediate (the first clause goes "
        "alone, for the earliest first audio), never (one utterance, split only at the model's input limit).",
    )
    extra_params: dict[str, Any] | None = Field(
        None,
        description='pronunciation_dict: ["<source>/<replacement>", ...], whole words, any case, longest first; '
        "a replacement written /like this/ is IPA (Kokoro English).",
    )

    # --- extensions (not in Together's schema; what Kokoro-FastAPI and Orpheus servers offer) ---
    # Floats are finite and strict (a JSON number; NaN and Infinity, which Python's JSON parser takes, are 400s).
    speed: float = Field(1.0, ge=0.25, le=4.0, strict=True, allow_inf_nan=False, description="Speaking rate (Kokoro).")
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, strict=True, description="Makes sampling and vocoder noise reproducible."
    )
    temperature: float | None = Field(
        None, ge=0.01, le=2.0, strict=True, allow_inf_nan=False, description="Sampling temperature (Orpheus)."
    )
    top_p: float | None = Field(
        None, ge=0.01, le=1.0, strict=True, allow_inf_nan=False, description="Nucleus sampling mass (Orpheus)."
    )
    repetition_penalty: float | None = Field(
        None, ge=1.0, le=2.0, strict=True, allow_inf_nan=False, description="Repetition penalty (Orpheus: >= 1.1)."
    )
    max_tokens: int | None = Field(
        None, ge=7, le=16384, strict=True, description="Most audio tokens per text segment (Orpheus)."
    )
    word_timestamps: bool = Field(
        False, strict=True, description='The same as alignment: "word" (this server\'s older name for it).'
    )

    @field_validator("input")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input must contain text")
        return value

    @property
    def wants_words(self) -> bool:
        return self.word_timestamps or self.alignment == "word"

    def to_params(self) -> SessionParams:
        sampling = {
            k: v
            for k, v in (
                ("temperature", self.temperature),
                ("top_p", self.top_p),
                ("repetition_penalty", self.repetition_penalty),
                ("max_tokens", self.max_tokens),
            )
            if v is not None
        }
        return SessionParams(
            model=self.model,
            voice=self.voice,
            language=self.language,
            output=OutputSpec(
                # mulaw is raw PCM whose encoding the format fixes (the service keeps it so).
                format="raw" if self.response_format == "mulaw" else self.response_format,
                encoding=self.encoding or "pcm_s16le",  # the service applies the model's default
                sample_rate=self.sample_rate,
                bit_rate=self.bit_rate,
                stream=self.stream,
            ),
            speed=self.speed,
            seed=self.seed,
            sampling=sampling,
            word_timestamps=self.wants_words,
            segment=self.segment,
        )

    @property
    def encoding(self) -> str | None:
        """The PCM encoding the client fixed: ``response_encoding``, or mu-law by ``response_format``."""
        return "pcm_mulaw" if self.response_format == "mulaw" else self.response_encoding


class VoiceEntry(BaseModel):
    """One voice of a model."""

    id: str = Field(description="What a request's `voice` names.")
    name: str = Field(description="Display name.")
    language: str | None = Field(None, description="Accent or language, e.g. en-US.")
    gender: str | None = Field(None, description="female or male, where known.")


class ModelVoices(BaseModel):
    """The voices of one model."""

    model: str = Field(description="The model's canonical name.")
    voices: list[VoiceEntry] = Field(description="Its voices.")


class ListVoicesResponse(BaseModel):
    """``GET /v1/voices``: voices per served model."""

    data: list[ModelVoices] = Field(description="One entry per model (or just the one asked for).")


class ModelCard(BaseModel):
    """One model, readable as Together's model object and as OpenAI's."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    type: Literal["audio"] = "audio"
    display_name: str
    organization: str
    owned_by: str
    link: str | None = None
    # Together's SDKs require a pricing object; a self-hosted model costs nothing per token.
    pricing: dict[str, float] = Field(
        default_factory=lambda: {"input": 0.0, "output": 0.0, "hourly": 0.0, "base": 0.0, "finetune": 0.0}
    )
    available: bool = True

    @classmethod
    def for_model(cls, model_id: str, available: bool) -> ModelCard:
        organization = model_id.split("/", 1)[0] if "/" in model_id else "tts-server"
        return cls(
            id=model_id,
            display_name=model_id.rsplit("/", 1)[-1],
            organization=organization,
            owned_by=organization,
            link=f"https://huggingface.co/{model_id}" if "/" in model_id and organization != "cartesia" else None,
            available=available,
        )


class ModelList(BaseModel):
    """OpenAI's list shape (Together's SDKs read a bare array of cards instead)."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class WordEntry(BaseModel):
    """One word and when it is spoken."""

    word: str = Field(description="The word as written in the input.")
    start: float = Field(description="Seconds from the start of the audio.")
    end: float = Field(description="Seconds from the start of the audio.")

    @classmethod
    def of(cls, timing: WordTiming) -> WordEntry:
        return cls(word=timing.word, start=timing.start, end=timing.end)


class SpeechWithTimestamps(BaseModel):
    """Non-streaming response with ``alignment: "word"`` (an extension: Together documents word
    timestamps for streams only)."""

    object: Literal["audio.speech"] = Field("audio.speech", description="The object type.")
    id: str = Field(description="The request id (also in the X-Request-ID header).")
    model: str = Field(description="The model that spoke.")
    content_type: str = Field(description="What `audio` decodes to: audio/wav, audio/mpeg or application/octet-stream.")
    sample_rate: int = Field(description="Sample rate of the audio in Hz.")
    encoding: str | None = Field(None, description="PCM encoding of raw audio.")
    audio: str = Field(description="Base64 of the audio in the requested response_format.")
    words: list[WordEntry] = Field(description="Every word, in order.")


def word_timestamps_event(item_id: str, words: list[WordTiming]) -> dict[str, Any]:
    """Together's ``conversation.item.word_timestamps`` event, exactly: three parallel arrays.

    The one builder of this event, for SSE streams and the realtime websocket alike. It carries no
    ``b64``/``delta``, so clients that read only audio chunks skip it; it goes only to requests that
    asked for word alignment.
    """
    return {
        "type": "conversation.item.word_timestamps",
        "item_id": item_id,
        "words": [w.word for w in words],
        "start_seconds": [w.start for w in words],
        "end_seconds": [w.end for w in words],
    }


def stream_chunk(model: str, item_id: str, b64: str) -> dict[str, Any]:
    """One SSE audio event, readable by both dialects Together uses.

    The spec and the v1 SDK read ``object/model/b64``; Together's current docs describe
    ``type/item_id/delta``. Carrying both costs a few bytes and satisfies every client.
    """
    return {
        "object": "audio.tts.chunk",
        "model": model,
        "b64": b64,
        "type": "conversation.item.audio_output.delta",
        "item_id": item_id,
        "delta": b64,
    }
