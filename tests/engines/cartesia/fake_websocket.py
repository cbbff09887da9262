"""A stand-in for Cartesia's ``/tts/websocket``, speaking what Cartesia documents (see
engines/cartesia/websocket.py for the messages): contexts, ``continue``, ``cancel``, and replies
``chunk``/``timestamps``/``done``/``error`` carrying their ``context_id``.

Each input's transcript is "spoken" at once: :data:`SAMPLES_PER_CHAR` samples a character, sent
as two ``chunk`` replies (and a ``timestamps`` reply with ``add_timestamps``), so a test sees
exactly which text was generated when. ``continue: false`` ends the context with ``done``. With
``expire_s`` set, an input for a context whose audio ended longer ago than that is answered with
an error, as Cartesia does for an expired context. Runs inside FakeCartesia's ASGI app (same
port as its HTTP API); shared state is guarded by a lock because the fake runs in its own thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from typing import Any

from tests.engines.cartesia.fake_wire import API_KEY, ENCODINGS, SAMPLE_RATES, VERSION

SAMPLES_PER_CHAR = 240  # 10 ms a character at 24 kHz
BYTES = {"pcm_f32le": 4, "pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1}


class FakeCartesiaWebsocket:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.messages: list[dict[str, Any]] = []  # every client message, in order
            self.handshakes: list[dict[str, str]] = []  # headers and query of each connection
            self.expire_s: float | None = None
            self.fail_transcripts: set[str] = set()  # inputs answered with a 400 error
            self.delay_s = 0.0  # before each reply, so a test can interrupt a generation

    def inputs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if "transcript" in m]

    def cancels(self) -> list[str]:
        with self._lock:
            return [m["context_id"] for m in self.messages if m.get("cancel")]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair)
        with self._lock:
            self.handshakes.append({**headers, **{f"query:{k}": v for k, v in query.items()}})
        await receive()  # websocket.connect
        key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        version = headers.get("cartesia-version") or query.get("cartesia_version")
        if scope["path"] != "/tts/websocket" or key != API_KEY or version != VERSION:
            await send({"type": "websocket.close", "code": 1008})  # before accept: an HTTP 403
            return
        await send({"type": "websocket.accept"})
        contexts: dict[str, dict[str, Any]] = {}
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            request = json.loads(message["text"])
            with self._lock:
                self.messages.append(request)
            for reply in self._replies(request, contexts):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                await send({"type": "websocket.send", "text": json.dumps(reply)})

    def _replies(self, request: dict[str, Any], contexts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        context_id = request.get("context_id")
        if request.get("cancel"):
            contexts.pop(context_id, None)
            return []
        problem = _check(request)
        state = contexts.setdefault(context_id, {"seconds": 0.0, "audio_end": None, "index": len(contexts)})
        expired = self.expire_s is not None and state["audio_end"] is not None and time.monotonic() - state["audio_end"]
        if expired and expired > self.expire_s:
            problem = "Context has expired."
        if problem is None and request["transcript"] in self.fail_transcripts:
            problem = "Transcript rejected by the test."
        if problem is not None:
            contexts.pop(context_id, None)
            return [_error(context_id, problem)]
        replies = self._speak(request, state)
        if not request.get("continue"):
            contexts.pop(context_id, None)
            replies.append({"type": "done", "done": True, "status_code": 206, "context_id": context_id})
        return replies

    def _speak(self, request: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
        transcript = request["transcript"]
        fmt = request["output_format"]
        samples = len(transcript.strip()) * SAMPLES_PER_CHAR
        if not samples:
            return []
        audio = bytes([state["index"] + 1]) * (samples * BYTES[fmt["encoding"]])
        half = len(audio) // 2 // BYTES[fmt["encoding"]] * BYTES[fmt["encoding"]]
        context_id = request["context_id"]
        replies = [
            {"type": "chunk", "data": base64.b64encode(part).decode(), "done": False, "status_code": 206,
             "step_time": 1.0, "context_id": context_id}
            for part in (audio[:half], audio[half:])
        ]  # fmt: skip
        if request.get("add_timestamps"):
            words, start, end, t = [], [], [], state["seconds"]
            for word in transcript.split():
                words.append(word)
                start.append(t)
                t += len(word) * SAMPLES_PER_CHAR / fmt["sample_rate"]
                end.append(t)
            replies.append(
                {"type": "timestamps", "done": False, "status_code": 206, "context_id": context_id,
                 "word_timestamps": {"words": words, "start": start, "end": end}}
            )  # fmt: skip
        state["seconds"] += samples / fmt["sample_rate"]
        state["audio_end"] = time.monotonic()
        return replies


def _check(request: dict[str, Any]) -> str | None:
    """What Cartesia would reject: missing fields, a non-raw container, unknown values."""
    for name in ("model_id", "transcript", "voice", "output_format", "context_id"):
        if name not in request:
            return f"Missing field: {name}."
    fmt = request["output_format"]
    valid = fmt.get("encoding") in ENCODINGS and fmt.get("sample_rate") in SAMPLE_RATES
    if fmt.get("container") != "raw" or not valid:
        return f"Invalid output_format: {fmt}."
    if request["voice"].get("mode") != "id" or not request["voice"].get("id"):
        return "Invalid voice."
    return None


def _error(context_id: str | None, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "done": True,
        "status_code": 400,
        "title": "Invalid request",
        "message": message,
        "error_code": "invalid_request",
        "context_id": context_id,
    }
