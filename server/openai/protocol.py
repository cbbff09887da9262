"""OpenAI's ``POST /v1/audio/speech`` body and stream events, and the rule that tells it from Together's.

Both APIs use the same path, and most bodies (``model``, ``input``, ``voice``, maybe
``response_format: mp3``) are valid in both. The rule, applied to the JSON body:

1. A field only Together has (``response_encoding``, ``sample_rate``, ``bit_rate``, ``stream``,
   ``language``, ``alignment``, ``segment``, ``extra_params``) or ``response_format`` ``raw`` or
   ``mulaw`` makes it a Together request, whatever else it carries: Together ignores fields it
   does not know, so adding OpenAI fields to a Together request never changes what it means.
2. Otherwise something only OpenAI has makes it an OpenAI request: ``stream_format``,
   ``instructions``, ``response_format`` ``opus``/``aac``/``flac``/``pcm``, a voice given as an
   object (``{"id": ...}``), a model name from the OpenAI alias table (``tts-1``...), or a client
   that introduces itself as OpenAI's SDK (User-Agent ``OpenAI/Python ...``, ``OpenAI/JS ...``).
3. Everything else is Together's (so ``curl`` with model, input and voice still gets a WAV).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Together's fields and this server's extensions to them: a body with any of these keeps Together's meaning.
TOGETHER_ONLY_FIELDS = frozenset(
    {
        "response_encoding",
        "sample_rate",
        "bit_rate",
        "stream",
        "language",
        "alignment",
        "segment",
        "extra_params",
        "word_timestamps",
        "temperature",
        "top_p",
        "repetition_penalty",
        "max_tokens",
    }
)
OPENAI_ONLY_FIELDS = frozenset({"stream_format", "instructions"})
OPENAI_ONLY_FORMATS = frozenset({"opus", "aac", "flac", "pcm"})

OpenAIFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


def is_openai_request(body: Any, user_agent: str, aliases: frozenset[str]) -> bool:
    """The rule in the module docstring. ``aliases`` are lower-cased OpenAI model names."""
    if not isinstance(body, dict):
        return False  # not a JSON object: Together's route answers its usual 400
    if TOGETHER_ONLY_FIELDS & body.keys() or body.get("response_format") in ("raw", "mulaw"):
        return False
    if OPENAI_ONLY_FIELDS & body.keys() or body.get("response_format") in OPENAI_ONLY_FORMATS:
        return True
    if isinstance(body.get("voice"), dict):
        return True
    if isinstance(body.get("model"), str) and body["model"].strip().lower() in aliases:
        return True
    return user_agent.lower().startswith("openai/")


class VoiceId(BaseModel):
    """A voice given as an object, as newer OpenAI SDKs allow."""

    id: str = Field(min_length=1, description="The voice's name.")


class OpenAISpeechRequest(BaseModel):
    """OpenAI's body, plus ``seed`` as on the Together route."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, description="tts-1, tts-1-hd, gpt-4o-mini-tts (aliases) or a served model.")
    input: str = Field(min_length=1, description="The text to speak.")
    voice: str | VoiceId = Field(description="An OpenAI voice (alloy, nova...), a model's own voice, or {id}.")
    instructions: str | None = Field(
        None, max_length=4096, description="Orpheus: emotion tags it names (laugh, sigh...); others ignore it."
    )
    response_format: OpenAIFormat = Field("mp3", description="Container/codec of the audio (24 kHz).")
    speed: float = Field(1.0, ge=0.25, le=4.0, strict=True, allow_inf_nan=False, description="Speaking rate.")
    stream_format: Literal["sse", "audio"] = Field(
        "audio", description="audio: the file, streamed as encoded; sse: speech.audio.delta events."
    )
    seed: int | None = Field(None, ge=0, le=2**32 - 1, strict=True, description="Reproducible audio.")

    @field_validator("input")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input must contain text")
        return value

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceId) else self.voice


#: Audio in ``speech.audio.done`` usage is counted in 20 ms frames; input in characters (no tokenizer here).
FRAMES_PER_SECOND = 50


def audio_delta(b64: str) -> dict[str, Any]:
    return {"type": "speech.audio.delta", "audio": b64}


def audio_done(input_chars: int, audio_seconds: float) -> dict[str, Any]:
    output_tokens = round(audio_seconds * FRAMES_PER_SECOND)
    return {
        "type": "speech.audio.done",
        "usage": {
            "input_tokens": input_chars,
            "output_tokens": output_tokens,
            "total_tokens": input_chars + output_tokens,
        },
    }
