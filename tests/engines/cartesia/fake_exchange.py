"""One request/response of the fake Cartesia: routing, validation, pacing, and disconnect detection."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.engines.cartesia.fake_wire import (
    API_KEY,
    BIT_RATES,
    CONTENT_TYPES,
    ENCODINGS,
    LANGUAGES,
    SAMPLE_RATES,
    VERSION,
    Behaviour,
    Recorded,
    audio_part,
    error_object,
    wav_header,
)


class Exchange:
    """One request/response, with a watcher that notices the client leaving mid-response."""

    def __init__(
        self,
        behaviour: Behaviour,
        request: Recorded,
        receive: Any,
        send: Any,
        *,
        disconnected: threading.Event,
        finished: threading.Event,
        gate: threading.Semaphore,
        part_sent: Callable[[], None],
    ) -> None:
        self.b, self.request, self._receive, self._send = behaviour, request, receive, send
        self.disconnected, self.finished = disconnected, finished
        self.gate, self.part_sent = gate, part_sent
        self.complete = False
        self.gone = asyncio.Event()

    async def _watch(self) -> None:
        message = await self._receive()  # the body is read: the next message is the disconnect
        if message["type"] == "http.disconnect":
            if not self.complete:
                self.disconnected.set()
            self.gone.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep, but wake when the client leaves; True if it is still there."""
        try:
            await asyncio.wait_for(self.gone.wait(), seconds)
        except asyncio.TimeoutError:
            return True
        return False

    async def wait_for_permit(self, timeout_s: float = 30.0) -> bool:
        """Wait (without blocking the loop) for the test to release a part; False if the client left."""
        deadline = time.monotonic() + timeout_s
        while not self.gate.acquire(blocking=False):
            if time.monotonic() >= deadline or not await self.pause(0.005):
                return False
        return not self.gone.is_set()

    async def start(self, status: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        headers = [(b"content-type", content_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, more: bool = True) -> None:
        if not more:
            self.complete = True  # before the send: uvicorn reports a disconnect right after it
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def error(
        self,
        status: int,
        title: str,
        message: str,
        code: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = raw if raw is not None else json.dumps(error_object(title, message, code)).encode()
        await self.start(status, "application/json" if raw is None else "text/plain", headers)
        await self.body(payload, more=False)

    async def run(self) -> None:
        watcher = asyncio.ensure_future(self._watch())
        try:
            await self._dispatch()
        finally:
            watcher.cancel()

    async def _dispatch(self) -> None:
        headers = self.request.headers
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return await self.error(401, "Unauthorized", "Invalid API key.", "unauthorized")
        if headers.get("cartesia-version") not in {"2024-06-10", "2024-11-13", "2025-04-16", VERSION}:
            return await self.error(400, "Invalid version", "Cartesia-Version header is missing or invalid.")
        if self.b.hang_s and not await self.pause(self.b.hang_s):
            return
        route = (self.request.method, self.request.path)
        if route == ("GET", "/voices"):
            return await self._voices()
        if route in {("POST", "/tts/bytes"), ("POST", "/tts/sse")}:
            return await self._tts(sse=route[1] == "/tts/sse")
        await self.error(404, "Not found", f"No route {route[0]} {route[1]}.", "not_found")

    def _validate(self, body: Any, sse: bool) -> str | None:
        if not isinstance(body, dict):
            return "Request body must be a JSON object."
        for key in ("model_id", "transcript", "voice", "output_format"):
            if key not in body:
                return f"Missing required field '{key}'."
        voice, fmt = body["voice"], body["output_format"]
        if "language" in body and body["language"] not in LANGUAGES:  # Cartesia's codes: no locales
            return f"Invalid language '{body['language']}'."
        if not (isinstance(voice, dict) and voice.get("mode") == "id" and isinstance(voice.get("id"), str)):
            return "voice must be {mode: 'id', id: <uuid>}."
        container = fmt.get("container")
        if container not in CONTENT_TYPES or (sse and container != "raw"):
            return f"Invalid container '{container}'."
        if fmt.get("sample_rate") not in SAMPLE_RATES:
            return f"Invalid sample_rate {fmt.get('sample_rate')}."
        if container == "mp3" and fmt.get("bit_rate") not in BIT_RATES:
            return "mp3 needs a valid bit_rate."
        if container != "mp3" and fmt.get("encoding") not in ENCODINGS:
            return f"Invalid encoding {fmt.get('encoding')}."
        return None

    async def _tts(self, *, sse: bool) -> None:
        b = self.b
        if b.tts_status is not None:
            headers = {"retry-after": b.retry_after} if b.retry_after else None
            return await self.error(
                b.tts_status,
                "Injected failure",
                "The fake was told to fail.",
                "injected",
                raw=b.tts_error_body,
                headers=headers,
            )
        problem = self._validate(self.request.body, sse)
        if problem:
            return await self.error(400, "Invalid request", problem, "invalid_request")
        voice_id = self.request.body["voice"]["id"]
        if b.known_voice_ids is not None and voice_id not in b.known_voice_ids:
            return await self.error(404, "Voice not found", f"No voice with id {voice_id}.", "voice_not_found")
        fmt = self.request.body["output_format"]
        if sse:
            return await self._sse()
        await self.start(200, CONTENT_TYPES[fmt["container"]])
        if fmt["container"] == "wav":
            await self.body(wav_header(fmt["sample_rate"], fmt["encoding"]))
        if not await self._parts(lambda i: self.body(audio_part(i, b.part_size))):
            return
        await self.body(b"", more=False)
        self.finished.set()

    async def _parts(self, emit: Any) -> bool:
        """Emit the audio parts with the configured pacing; False if the client left or we stalled."""
        for i in range(self.b.parts):
            if i and self.b.delay_s and not await self.pause(self.b.delay_s):
                return False
            held = self.b.hold_after_parts
            if held is not None and i >= held and not await self.wait_for_permit():
                return False
            if self.gone.is_set():
                return False
            await emit(i)
            self.part_sent()
            if self.b.stall_after_parts is not None and i + 1 >= self.b.stall_after_parts:
                await self.pause(60)  # until the client gives up
                return False
            if self.b.sse_error_after is not None and i + 1 >= self.b.sse_error_after:
                await self._event(
                    "error",
                    {
                        "type": "error",
                        "done": True,
                        "status_code": self.b.sse_error_status,
                        **error_object("Generation failed", "The model failed mid-stream.", "internal_error"),
                    },
                )
                await self.body(b"", more=False)
                return False
        return True

    async def _event(self, name: str, payload: dict[str, Any]) -> None:
        await self.body(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    async def _chunk_event(self, i: int) -> None:
        if self.b.transcript_timestamps and self.request.body.get("add_timestamps") and i < 2:
            words = self.request.body["transcript"].split()
            half = (len(words) + 1) // 2
            first = i * half
            batch = words[first : first + half] if i == 0 else words[half:]
            stamps = {
                "words": batch,
                "start": [0.25 * (first + k) for k in range(len(batch))],
                "end": [0.25 * (first + k + 1) for k in range(len(batch))],
            }
            await self._event("timestamps", {"type": "timestamps", "done": False, "word_timestamps": stamps})
        if self.b.sse_extra_events and i == 0:
            await self.body(b": keep-alive\n\n")
            await self._event(
                "timestamps",
                {
                    "type": "timestamps",
                    "done": False,
                    "status_code": 206,
                    "word_timestamps": {"words": ["hi"], "start": [0.0], "end": [0.2]},
                },
            )
        await self._event(
            "chunk",
            {
                "type": "chunk",
                "data": base64.b64encode(audio_part(i, self.b.part_size)).decode(),
                "done": False,
                "status_code": 206,
                "step_time": 12.5,
                "context_id": "ctx",
            },
        )

    async def _sse(self) -> None:
        await self.start(200, "text/event-stream")
        if not await self._parts(self._chunk_event):
            return
        if not self.b.omit_done:
            await self._event("done", {"type": "done", "done": True, "status_code": 200, "context_id": "ctx"})
        await self.body(b"", more=False)
        self.finished.set()

    async def _voices(self) -> None:
        if self.b.voices_status is not None:
            return await self.error(self.b.voices_status, "Injected failure", "Voice listing failed.", "injected")
        voices = self.b.voices
        after = self.request.query.get("starting_after", [None])[0]
        limit = min(int(self.request.query.get("limit", ["10"])[0]), self.b.voices_page_size)
        start = next((i + 1 for i, v in enumerate(voices) if v["id"] == after), 0) if after else 0
        page = voices[start : start + limit]
        has_more = start + limit < len(voices)
        payload = {"data": page, "has_more": has_more, "next_page": page[-1]["id"] if has_more else None}
        await self.start(200, "application/json")
        await self.body(json.dumps(payload).encode(), more=False)
