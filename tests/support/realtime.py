"""A small client for the realtime websocket in tests: connect, send events, read until an event."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import urlencode

import httpx
import websockets


def ws_url(base: str, **query: object) -> str:
    return base.replace("http://", "ws://") + "/v1/audio/speech/websocket?" + urlencode(query)


def connect(base: str, **query: object):
    return websockets.connect(ws_url(base, **query), max_size=None)


async def recv(ws, timeout: float = 60.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, kind: str, timeout: float = 60.0) -> list[dict]:
    """Events up to and including the first of ``kind``."""
    seen = [await recv(ws, timeout)]
    while seen[-1]["type"] != kind:
        seen.append(await recv(ws, timeout))
    return seen


async def append(ws, text: str) -> None:
    await ws.send(json.dumps({"type": "input_text_buffer.append", "text": text}))


async def commit(ws) -> None:
    await ws.send(json.dumps({"type": "input_text_buffer.commit"}))


async def clear(ws) -> None:
    await ws.send(json.dumps({"type": "input_text_buffer.clear"}))


def pcm_of(events: list[dict], item_id: str | None = None) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "conversation.item.audio_output.delta" and item_id in (None, e["item_id"])
    )


def words_of(events: list[dict]) -> list[str]:
    return [w for e in events if e["type"] == "conversation.item.word_timestamps" for w in e["words"]]


def word_times_of(events: list[dict]) -> list[tuple[str, float, float]]:
    """(word, start, end) from Together's parallel arrays, in the order the events came."""
    return [
        timing
        for e in events
        if e["type"] == "conversation.item.word_timestamps"
        for timing in zip(e["words"], e["start_seconds"], e["end_seconds"], strict=True)
    ]


def decoded_seconds(data: bytes) -> float:
    """Decode a whole audio file with FFmpeg (PyAV): its length in seconds, counted in decoded samples."""
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


async def wait_for_stats(base: str, model: str, check, timeout: float = 30.0) -> dict:
    """Poll ``/stats`` until ``check(stats of model)`` holds; returns those stats."""
    async with httpx.AsyncClient() as client:
        for _ in range(int(timeout / 0.1)):
            stats = (await client.get(f"{base}/stats")).json()[model]
            if check(stats):
                return stats
            await asyncio.sleep(0.1)
    raise AssertionError(f"stats never matched: {stats}")
