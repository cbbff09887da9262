"""Reading Cartesia's POST /tts/sse stream.

The wire is standard Server-Sent Events: ``event: <type>`` then ``data: <json>`` then a blank
line. The JSON carries ``type`` too: ``chunk`` (base64 audio in ``data``), ``timestamps`` (word
timings, with ``add_timestamps``), ``done``, ``error``, and events we do not need
(``phoneme_timestamps``, ``flush_done``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from engines.base import WordTiming, WordTimings
from engines.cartesia import upstream_errors
from engines.errors import UpstreamError


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str


async def iter_sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Group SSE lines into events (the WHATWG rules we need: event/data fields, comments)."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data))
            event, data = None, []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data:  # a final event without its blank line
        yield SseEvent(event, "\n".join(data))


def _payload(event: SseEvent) -> dict[str, Any]:
    try:
        payload = json.loads(event.data)
    except ValueError as exc:
        raise UpstreamError("Cartesia sent a stream event that is not JSON.") from exc
    if not isinstance(payload, dict):
        raise UpstreamError("Cartesia sent a stream event that is not a JSON object.")
    return payload


def word_timings(payload: dict[str, Any]) -> WordTimings | None:
    """Cartesia's ``word_timestamps: {words, start, end}`` (seconds), as our event."""
    stamps = payload.get("word_timestamps")
    if not isinstance(stamps, dict):
        return None
    words, starts, ends = stamps.get("words"), stamps.get("start"), stamps.get("end")
    if not (isinstance(words, list) and isinstance(starts, list) and isinstance(ends, list)):
        raise UpstreamError("Cartesia sent word timestamps of an unexpected shape.")
    return WordTimings([WordTiming(str(w), float(a), float(b)) for w, a, b in zip(words, starts, ends)])


async def iter_audio(lines: AsyncIterator[str], *, api_key: str | None) -> AsyncIterator[bytes | WordTimings]:
    """Yield each chunk's decoded audio (and word timings) the moment its event completes; raise on ``error``."""
    async for event in iter_sse_events(lines):
        payload = _payload(event)
        kind = payload.get("type") or event.event
        if kind == "chunk":
            encoded = payload.get("data")
            if not encoded:
                continue
            try:
                audio = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError) as exc:
                raise UpstreamError("Cartesia sent an audio chunk that is not valid base64.") from exc
            if audio:
                yield audio
            if payload.get("done") is True:
                return
        elif kind == "timestamps":
            words = word_timings(payload)
            if words is not None and words.words:
                yield words
        elif kind == "error":
            raise upstream_errors.from_error_event(payload, api_key)
        elif kind == "done":
            return
    # Cartesia always ends with ``done``: without it the audio the client got is truncated.
    raise UpstreamError("Cartesia closed the stream before it was done.")
