"""The fake Cartesia's vocabulary: wire constants, recognizable audio, error and voice objects,
the record of a request and the per-test behaviour switches."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

SAMPLE_RATES = {8000, 16000, 22050, 24000, 44100, 48000}
BIT_RATES = {32000, 64000, 96000, 128000, 192000}
ENCODINGS = {"pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"}
LANGUAGES = {"en", "de", "fr", "es", "hi", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "tr", "zh"}
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "raw": "application/octet-stream"}
VERSION = "2026-03-01"
API_KEY = "sk_car_test_0123456789"


def audio_part(index: int, size: int = 64) -> bytes:
    """Recognizable audio bytes: part ``i`` is ``size`` copies of byte ``i + 1``."""
    return bytes([(index + 1) % 256]) * size


def wav_header(sample_rate: int, encoding: str) -> bytes:
    # A WAV streamed while it is generated cannot know its length: the sizes say so (0xFFFFFFFF).
    bits, fmt = {"pcm_f32le": (32, 3), "pcm_s16le": (16, 1), "pcm_mulaw": (8, 7), "pcm_alaw": (8, 6)}[encoding]
    block = bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, fmt, 1, sample_rate, sample_rate * block, block, bits)
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


def error_object(title: str, message: str, error_code: str | None) -> dict[str, Any]:
    return {"error_code": error_code, "title": title, "message": message, "request_id": str(uuid.uuid4())}


def cartesia_voice(name: str, voice_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """One voice as GET /voices describes it."""
    return {
        "id": voice_id or str(uuid.uuid4()),
        "name": name,
        "description": f"{name} (fake)",
        "language": "en",
        "gender": "feminine",
        "is_owner": False,
        "is_public": True,
        "created_at": "2025-01-01T00:00:00Z",
        **extra,
    }


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, list[str]]
    body: Any


@dataclass
class Behaviour:
    """What the next requests get. Tests set fields; ``FakeCartesia.reset`` restores defaults."""

    parts: int = 3  # audio chunks (SSE events or body parts)
    part_size: int = 64
    delay_s: float = 0.0  # pause before each audio part after the first
    tts_status: int | None = None  # answer /tts/* with this error status instead
    tts_error_body: bytes | None = None  # raw body for that error (default: structured JSON)
    retry_after: str | None = None
    voices_status: int | None = None
    sse_error_after: int | None = None  # send an SSE error event after this many chunks
    sse_error_status: int = 500
    sse_extra_events: bool = False  # interleave events the proxy must ignore
    # With add_timestamps: time the transcript's own words (0.25 s each), half before each of the first
    # two chunks, as Cartesia sends word timestamps in batches.
    transcript_timestamps: bool = False
    omit_done: bool = False  # end the SSE stream without its done event
    hang_s: float = 0.0  # stall before the response starts
    stall_after_parts: int | None = None  # stall mid-body after this many parts
    # After this many parts, each further part waits for a permit from ``FakeCartesia.release``:
    # lets a test prove what arrived while the fake was still holding the rest, without a clock.
    hold_after_parts: int | None = None
    voices: list[dict[str, Any]] = field(default_factory=list)
    voices_page_size: int = 2
    known_voice_ids: set[str] | None = None  # when set, other voice UUIDs get Cartesia's 404
