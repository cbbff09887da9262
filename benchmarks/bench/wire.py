"""Server-sent events, incrementally, and what each event of either dialect means to a benchmark.

:class:`SSEParser` follows the HTML living standard's event-stream rules (``data:`` lines joined
by newlines, a blank line dispatches, ``:`` comments, CR/LF/CRLF line ends, events split anywhere
across network chunks). :func:`interpret` reads one event's data:

* Together: ``{"object": "audio.tts.chunk", "b64": ...}`` (also carrying ``delta``), or the
  websocket-style ``{"type": "conversation.item.audio_output.delta", "delta": ...}``; word
  timestamps (``audio.tts.word_timestamps``) carry no audio and are skipped; ``[DONE]`` ends;
* OpenAI: ``{"type": "speech.audio.delta", "audio": ...}``, then ``{"type": "speech.audio.done"}``;
* an ``{"error": ...}`` object (either dialect) or ``conversation.item.tts.failed`` is an in-band error.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"


class SSEParser:
    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event = ""
        self._decoder = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._decoder is None:
            import codecs

            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = self._decoder.decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = text.endswith("\r")
        self._buffer += text
        lines = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop()  # an incomplete last line waits for more bytes
        events = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line is discarded, as the standard says."""
        self._buffer, self._data, self._event = "", [], ""
        return []

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent("\n".join(self._data), self._event or "message")
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


@dataclass(frozen=True)
class Interpreted:
    kind: str  # audio | done | error | skip
    audio: bytes = b""
    message: str = ""


SKIP = Interpreted("skip")
DONE = Interpreted("done")


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=False)


def interpret(data: str) -> Interpreted:
    """What one SSE (or websocket) event's data says: audio bytes, the end, an error, or nothing."""
    if data.strip() == "[DONE]":
        return DONE
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        return Interpreted("error", message=f"unparseable event: {data[:120]!r}")
    if not isinstance(payload, dict):
        return SKIP
    kind = payload.get("type") or payload.get("object") or ""
    error = payload.get("error")
    if error or kind in ("conversation.item.tts.failed", "error"):
        if isinstance(error, dict):
            message = str(error.get("message") or error)
        else:
            message = str(error or payload)
        return Interpreted("error", message=message)
    try:
        if "b64" in payload and payload["b64"] is not None:
            return Interpreted("audio", _b64(payload["b64"]))
        if kind == "speech.audio.delta":
            return Interpreted("audio", _b64(payload.get("audio") or ""))
        if kind == "conversation.item.audio_output.delta":
            return Interpreted("audio", _b64(payload.get("delta") or ""))
    except (binascii.Error, TypeError, ValueError) as exc:
        return Interpreted("error", message=f"bad base64 audio: {exc}")
    if kind in ("speech.audio.done", "conversation.item.audio_output.done"):
        return DONE
    return SKIP  # word timestamps, session events, acknowledgements
