"""One timed request: send, read the response as it arrives, and record what a listener would see.

While a request runs only arrival times and payload bytes are kept (the event loop must stay free
for the other requests being timed). :func:`finish_record` decodes the audio afterwards: the
duration, which chunk carried the first decodable audio (the time to first audio), and whether
playback starting then would ever have stalled.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from benchmarks.bench.audio import DecodeError, audio_seconds, first_audio_index
from benchmarks.bench.targets import Target
from benchmarks.bench.wire import SSEParser, interpret


@dataclass
class Record:
    target: str
    level: float  # the concurrency (closed loop) or arrival rate (open loop) of its level
    mode: str  # closed | open
    index: int
    text_id: int
    chars: int
    warmup: bool = False
    start_s: float = 0.0  # when it was sent, from the level's start
    scheduled_s: float | None = None  # open loop: its planned arrival
    ttfb_s: float | None = None  # first response byte (headers excluded)
    ttfa_s: float | None = None  # first decodable audio
    ttlb_s: float | None = None  # last byte
    audio_s: float = 0.0
    rtf: float | None = None  # ttlb / audio duration
    bytes: int = 0  # body bytes on the wire
    audio_bytes: int = 0  # audio payload (after SSE/base64 unwrapping)
    chunks: int = 0
    status: int | None = None
    error_type: str | None = None
    error: str | None = None
    max_stall_s: float | None = None  # longest playback underrun after first audio
    realtime: bool = False
    # Working data, dropped once finished.
    _times: list[float] = field(default_factory=list, repr=False)
    _sizes: list[int] = field(default_factory=list, repr=False)
    _payload: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def ok(self) -> bool:
        return self.error_type is None

    def add(self, t: float, audio: bytes) -> None:
        self._times.append(t)
        self._sizes.append(len(audio))
        self._payload += audio

    def fail(self, error_type: str, message: str) -> None:
        if self.error_type is None:
            self.error_type, self.error = error_type, message[:300]

    def public(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["ok"] = self.ok
        return out


def _http_error_type(status: int) -> str:
    return f"http_{status}"


async def run_http(client: httpx.AsyncClient, target: Target, text: str, record: Record, timeout_s: float) -> None:
    """POST one request and fill ``record`` with timings and payload (decoded later)."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(_http(client, target, text, record, started), timeout_s)
    except asyncio.TimeoutError:
        record.fail("timeout", f"no complete response within {timeout_s:g} s")
    except httpx.ConnectError as exc:
        record.fail("connect", str(exc) or type(exc).__name__)
    except httpx.HTTPError as exc:
        record.fail("transport", f"{type(exc).__name__}: {exc}")
    record.ttlb_s = time.perf_counter() - started


async def _http(client: httpx.AsyncClient, target: Target, text: str, record: Record, started: float) -> None:
    url = f"{target.base}/v1/audio/speech"
    async with client.stream("POST", url, json=target.body(text), headers=target.headers()) as response:
        record.status = response.status_code
        if response.status_code != 200:
            body = (await response.aread()).decode(errors="replace")
            record.bytes = len(body)
            record.fail(_http_error_type(response.status_code), _error_message(body))
            return
        sse = "text/event-stream" in response.headers.get("content-type", "")
        parser = SSEParser() if sse else None
        async for chunk in response.aiter_bytes():
            now = time.perf_counter() - started
            if record.ttfb_s is None:
                record.ttfb_s = now
            record.bytes += len(chunk)
            if parser is None:
                record.add(now, chunk)
                continue
            for event in parser.feed(chunk):
                meaning = interpret(event.data)
                if meaning.kind == "audio":
                    record.add(now, meaning.audio)
                elif meaning.kind == "error":
                    record.fail("stream_error", meaning.message)
                elif meaning.kind == "done":
                    pass
        if target.stream == "sse" and not sse:
            record.fail("protocol", f"asked for SSE, got {response.headers.get('content-type')}")


def _error_message(body: str) -> str:
    try:
        error = json.loads(body).get("error")
        return str(error.get("message") if isinstance(error, dict) else error or body)
    except (ValueError, AttributeError):
        return body


async def run_websocket(target: Target, text: str, record: Record, timeout_s: float) -> None:
    """One item over Together's realtime websocket: append the text, commit, read deltas until done."""
    from urllib.parse import urlencode

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus, WebSocketException

    query = urlencode({"model": target.model, "voice": target.voice})
    url = f"{target.base.replace('http', 'ws', 1)}/v1/audio/speech/websocket?{query}"
    started = time.perf_counter()

    async def item() -> None:
        async with connect(url, additional_headers=target.headers(), max_size=None) as ws:
            record.status = 101
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": text}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            async for message in ws:
                now = time.perf_counter() - started
                record.ttfb_s = record.ttfb_s if record.ttfb_s is not None else now
                record.bytes += len(message)
                meaning = interpret(message if isinstance(message, str) else message.decode())
                if meaning.kind == "audio":
                    record.add(now, meaning.audio)
                elif meaning.kind == "error":
                    record.fail("stream_error", meaning.message)
                    return
                elif meaning.kind == "done":
                    return

    try:
        await asyncio.wait_for(item(), timeout_s)
    except asyncio.TimeoutError:
        record.fail("timeout", f"no complete response within {timeout_s:g} s")
    except InvalidStatus as exc:
        record.status = exc.response.status_code
        record.fail(_http_error_type(exc.response.status_code), str(exc))
    except (OSError, WebSocketException) as exc:
        record.fail("connect", f"{type(exc).__name__}: {exc}")
    record.ttlb_s = time.perf_counter() - started


def finish_record(record: Record, target: Target, first_audio_bound_s: float) -> Record:
    """Decode the payload: duration, time to first audio, RTF, playback stalls. Frees the payload."""
    data, sizes, times = bytes(record._payload), record._sizes, record._times
    record.audio_bytes, record.chunks = len(data), len(sizes)
    record._payload, record._sizes, record._times = bytearray(), [], []
    spec = target.audio
    try:
        record.audio_s = audio_seconds(data, spec) if data else 0.0
        first = first_audio_index(sizes, data, spec) if data else None
    except DecodeError as exc:
        record.fail("decode", str(exc))
        return record
    if first is not None:
        record.ttfa_s = times[first]
    if record.ok and record.audio_s <= 0:
        record.fail("no_audio", "the response held no audio")
    if record.audio_s > 0 and record.ttlb_s:
        record.rtf = record.ttlb_s / record.audio_s
    if first is not None and record.audio_s > 0:
        record.max_stall_s = max_stall(times, sizes, first, record.audio_s)
        record.realtime = record.ok and record.ttfa_s <= first_audio_bound_s and record.max_stall_s <= 0.0
    return record


def max_stall(times: list[float], sizes: list[int], first: int, audio_s: float) -> float:
    """Longest wait for audio once playback has started at the first audio chunk.

    Audio per chunk is its share of the payload (exact for PCM; constant bitrate for containers).
    Playback pauses while it waits, so each stall delays the rest.
    """
    total = sum(sizes)
    per_byte = audio_s / total if total else 0.0
    clock = times[first]  # when playback (re)started, shifted by stalls
    buffered = sum(sizes[: first + 1]) * per_byte  # audio available when playback starts
    worst = 0.0
    for t, size in zip(times[first + 1 :], sizes[first + 1 :]):
        if size == 0:
            continue
        stall = t - (clock + buffered)
        if stall > 0:
            worst = max(worst, stall)
            clock += stall
        buffered += size * per_byte
    return round(worst, 6)
