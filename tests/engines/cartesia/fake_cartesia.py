"""A local stand-in for Cartesia's API, speaking its documented wire protocol (Cartesia-Version 2026-03-01).

* ``POST /tts/bytes``: the audio file in the requested container (``audio/wav``, ``audio/mpeg``,
  ``application/octet-stream``), sent in several body parts.
* ``POST /tts/sse``: ``event: chunk`` / ``data: {"type": "chunk", "data": <base64>, ...}`` events,
  then ``event: done``; an ``event: error`` with the structured error object when told to.
* ``GET /voices``: ``{"data": [...], "has_more", "next_page"}`` pages, cursor ``starting_after``.
* Errors: ``{"error_code", "title", "message", "request_id"}`` JSON, as 2026-03-01 documents.
* ``/tts/websocket``: contexts with ``continue`` and ``cancel`` (see fake_websocket.py).

It checks what Cartesia checks (bearer key, Cartesia-Version, body fields and allowed values),
records every request, and can be told per test to fail, stall, pace its chunks, hold them back
until the test releases them (``hold_after_parts`` with :meth:`FakeCartesia.release`), or break off.
It is a raw ASGI app so that it controls exactly when each byte goes out and sees the moment the
client goes away. It runs under a real uvicorn in a background thread (its own event loop), so
everything shared with the tests is guarded by a lock or is a ``threading.Event``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from tests.engines.cartesia.fake_exchange import Exchange
from tests.engines.cartesia.fake_websocket import FakeCartesiaWebsocket
from tests.engines.cartesia.fake_wire import (
    API_KEY,
    Behaviour,
    Recorded,
    audio_part,
    cartesia_voice,
    wav_header,
)

__all__ = ["API_KEY", "FakeCartesia", "audio_part", "cartesia_voice", "wait_for", "wav_header"]


class FakeCartesia:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.behaviour = Behaviour()
        self.finished_sending = threading.Event()  # the last audio response ended normally
        self.client_disconnected = threading.Event()  # a client left before its response ended
        self.gate = threading.Semaphore(0)  # permits for parts held back by ``hold_after_parts``
        self._parts_sent = 0
        self.base_url = ""
        self.websocket = FakeCartesiaWebsocket()  # /tts/websocket, on the same port

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.behaviour = Behaviour()
            self.gate = threading.Semaphore(0)  # no permits left over from an earlier test
            self._parts_sent = 0
        self.finished_sending.clear()
        self.client_disconnected.clear()
        self.websocket.reset()

    def release(self, parts: int = 1) -> None:
        """Let ``parts`` more held-back audio parts go out (see ``Behaviour.hold_after_parts``)."""
        self.gate.release(parts)

    @property
    def parts_sent(self) -> int:
        """Audio parts (SSE chunk events or body parts) sent since the last reset."""
        with self._lock:
            return self._parts_sent

    def _count_part(self) -> None:
        with self._lock:
            self._parts_sent += 1

    def tts_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/tts/")]

    def voice_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == "/voices"]

    # --- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        recorded = Recorded(scope["method"], scope["path"], headers, parse_qs(scope["query_string"].decode()), body)
        with self._lock:
            self.requests.append(recorded)
            behaviour = self.behaviour
            gate = self.gate
        exchange = Exchange(
            behaviour,
            recorded,
            receive,
            send,
            disconnected=self.client_disconnected,
            finished=self.finished_sending,
            gate=gate,
            part_sent=self._count_part,
        )
        await exchange.run()


def wait_for(event: threading.Event, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if event.wait(0.02):
            return True
    return event.is_set()
