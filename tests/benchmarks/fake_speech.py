"""A tiny stand-in speech server: OpenAI-style and Together-style replies, Together's websocket, /metrics.

Audio is a tone of 0.1 s per word of input, sent in four pieces with short pauses. An input
containing ``[429]`` is refused with 429, as an overloaded server would.
"""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.benchmarks.audio_fixtures import container, pcm, tone

CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "opus": "audio/ogg",
                 "aac": "audio/aac", "pcm": "audio/pcm", "raw": "application/octet-stream"}  # fmt: skip
GAP_S = 0.01


class Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.wait_sum = 0.0


def audio_for(text: str) -> np.ndarray:
    return tone(0.1 * max(1, len(text.split())))


def pieces(data: bytes, n: int = 4) -> list[bytes]:
    step = max(1, -(-len(data) // n))
    return [data[i : i + step] for i in range(0, len(data), step)]


def create_app() -> Starlette:
    counters = Counters()

    async def speech(request: Request):
        body = await request.json()
        counters.requests += 1
        counters.wait_sum += 0.002
        if "[429]" in body["input"]:
            return JSONResponse({"error": {"message": "busy", "type": "rate_limit"}}, 429, {"Retry-After": "1"})
        samples = audio_for(body["input"])
        if body.get("stream_format") == "sse" or body.get("stream") is True:
            openai = "stream_format" in body
            data = pcm(samples, "pcm_s16le")

            async def events():
                for piece in pieces(data):
                    await asyncio.sleep(GAP_S)
                    b64 = base64.b64encode(piece).decode()
                    event = {"type": "speech.audio.delta", "audio": b64} if openai else {
                        "object": "audio.tts.chunk", "model": body["model"], "b64": b64}  # fmt: skip
                    yield f"data: {json.dumps(event)}\n\n"
                yield "data: " + ('{"type": "speech.audio.done"}' if openai else "[DONE]") + "\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        fmt = body.get("response_format", "mp3")
        data = pcm(samples, "pcm_s16le") if fmt in ("pcm", "raw") else container(samples, fmt)

        async def chunks():
            for piece in pieces(data):
                await asyncio.sleep(GAP_S)
                yield piece

        return StreamingResponse(chunks(), media_type=CONTENT_TYPES[fmt])

    async def realtime(ws: WebSocket):
        await ws.accept()
        await ws.send_json({"type": "session.created", "session": {"id": "s1", "object": "realtime.tts.session"}})
        text = ""
        while True:
            try:
                event = await ws.receive_json()
            except WebSocketDisconnect:
                return
            if event["type"] == "input_text_buffer.append":
                text += event["text"]
            elif event["type"] == "input_text_buffer.commit":
                for piece in pieces(pcm(audio_for(text), "pcm_s16le")):
                    await asyncio.sleep(GAP_S)
                    delta = base64.b64encode(piece).decode()
                    await ws.send_json(
                        {"type": "conversation.item.audio_output.delta", "item_id": "tts_1", "delta": delta}
                    )
                await ws.send_json({"type": "conversation.item.audio_output.done", "item_id": "tts_1"})
                text = ""

    async def metrics(_: Request):
        n = counters.requests
        return PlainTextResponse(
            "# TYPE fake_requests_total counter\n"
            f'fake_requests_total{{model="tts-1"}} {n}\n'
            "# TYPE fake_queue_wait_seconds histogram\n"
            f'fake_queue_wait_seconds_sum{{model="tts-1"}} {counters.wait_sum}\n'
            f'fake_queue_wait_seconds_count{{model="tts-1"}} {n}\n'
        )

    async def ready(_: Request):
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/v1/audio/speech", speech, methods=["POST"]),
            WebSocketRoute("/v1/audio/speech/websocket", realtime),
            Route("/metrics", metrics),
            Route("/ready", ready),
        ]
    )
