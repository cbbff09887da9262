"""Together's speech request -> Cartesia's TTS request body (POST /tts/bytes and /tts/sse).

Cartesia's body: ``model_id``, ``transcript``, ``voice: {mode: "id", id}``, ``language`` and
``output_format``, whose shape depends on the container: ``raw``/``wav`` carry ``encoding`` and
``sample_rate``; ``mp3`` carries ``sample_rate`` and ``bit_rate``. What Cartesia would reject for a
reason we can see locally is rejected here first, as a 400 naming the offending field. Checks every
model shares (language, stream only with ``raw``) are the server's (SpeechService and
``check_output_supported``); only Cartesia's own limits live here. The request's ``output`` is
expected to carry a sample rate: the engine fills in its default before calling these functions.
"""

from __future__ import annotations

from typing import Any

from engines.base import SessionParams, base_language
from engines.errors import InvalidRequest

#: The only output rates Cartesia accepts, for every container.
CARTESIA_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)
#: MP3 bit rates Cartesia accepts (the same set Together's schema allows).
CARTESIA_MP3_BIT_RATES: tuple[int, ...] = (32000, 64000, 96000, 128000, 192000)
#: Languages Cartesia's TTS endpoints document; they are exactly Together's language enum. The server
#: checks requests against ``CartesiaEngine.languages`` (this set) before the engine sees them.
CARTESIA_LANGUAGES: frozenset[str] = frozenset(
    {"en", "de", "fr", "es", "hi", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "tr", "zh"}
)
#: ``generation_config.speed`` bounds (Sonic 3 and later). 1.0 is never sent, so older models work.
SPEED_MIN, SPEED_MAX = 0.6, 1.5

_DEFAULT_MODEL_NAMES = frozenset({"cartesia/sonic", "sonic"})
_FAMILY_PREFIX = "cartesia/"


def cartesia_model_id(requested_model: str, default_model_id: str) -> str:
    """``cartesia/sonic`` (or ``sonic``) -> the configured id; ``cartesia/sonic-2`` -> ``sonic-2``."""
    name = requested_model.strip().lower()
    if name in _DEFAULT_MODEL_NAMES:
        return default_model_id
    if name.startswith(_FAMILY_PREFIX + "sonic-"):
        return name[len(_FAMILY_PREFIX) :]
    # The registry only routes cartesia/sonic names here; anything else falls back to the default.
    return default_model_id


def check_request(request: SessionParams) -> None:
    """Raise the 400 Cartesia would give for its own limits, before spending anything upstream."""
    output = request.output
    if output.sample_rate not in CARTESIA_SAMPLE_RATES:
        allowed = ", ".join(str(r) for r in CARTESIA_SAMPLE_RATES)
        raise InvalidRequest(
            f"sample_rate {output.sample_rate} is not supported by Cartesia Sonic; use one of {allowed}.",
            param="sample_rate",
        )
    if output.format == "mp3" and output.bit_rate not in CARTESIA_MP3_BIT_RATES:
        allowed = ", ".join(str(r) for r in CARTESIA_MP3_BIT_RATES)
        raise InvalidRequest(f"bit_rate {output.bit_rate} is not supported; use one of {allowed}.", param="bit_rate")
    if request.speed != 1.0 and not SPEED_MIN <= request.speed <= SPEED_MAX:
        raise InvalidRequest(
            f"speed {request.speed} is outside Cartesia's range {SPEED_MIN}-{SPEED_MAX}.", param="speed"
        )


def uses_sse(params: SessionParams) -> bool:
    """Streams, and word timestamps (only /tts/sse has them), go through /tts/sse as raw PCM."""
    return params.output.stream or params.word_timestamps


def output_format(params: SessionParams) -> dict[str, Any]:
    output = params.output
    if uses_sse(params):
        # /tts/sse speaks raw only; for a wav/mp3 with timestamps the server builds the container.
        return {"container": "raw", "encoding": output.pcm_encoding, "sample_rate": output.sample_rate}
    if output.format == "mp3":
        return {"container": "mp3", "sample_rate": output.sample_rate, "bit_rate": output.bit_rate}
    # Together applies response_encoding to raw only: a wav is 16-bit, with or without timestamps.
    return {"container": output.format, "encoding": output.pcm_encoding, "sample_rate": output.sample_rate}


def build_tts_body(params: SessionParams, text: str, *, model_id: str, voice_id: str) -> dict[str, Any]:
    """The JSON body for POST /tts/bytes or /tts/sse (they share one schema)."""
    body: dict[str, Any] = {
        "model_id": model_id,
        "transcript": text,
        "voice": {"mode": "id", "id": voice_id},
        "output_format": output_format(params),
        "language": base_language(params.language),  # a locale (pt-br) is spoken as its language
    }
    if params.speed != 1.0:
        body["generation_config"] = {"speed": params.speed}
    if params.word_timestamps:
        body["add_timestamps"] = True
    return body
