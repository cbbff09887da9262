"""SSE parsing (split anywhere, either dialect), byte streams, and what a request's record says."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from benchmarks.bench.client import Record, finish_record, max_stall, run_http
from benchmarks.bench.targets import Target
from benchmarks.bench.wire import SSEParser, interpret
from tests.benchmarks.audio_fixtures import container, pcm, tone


def sse(*payloads) -> bytes:
    out = b""
    for p in payloads:
        out += b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n"
    return out


def together_chunk(audio: bytes) -> dict:
    b64 = base64.b64encode(audio).decode()
    return {"object": "audio.tts.chunk", "model": "m", "b64": b64, "type": "conversation.item.audio_output.delta"}


def parse_all(data: bytes, step: int) -> list[str]:
    parser = SSEParser()
    events = []
    for i in range(0, len(data), step):
        events += [e.data for e in parser.feed(data[i : i + step])]
    return events


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_events_split_anywhere_come_out_whole(step):
    words = {"object": "audio.tts.word_timestamps", "words": [{"word": "héllo", "start": 0, "end": 1}]}
    stream = sse(together_chunk(b"\x01\x02"), words, b"[DONE]")
    events = parse_all(stream, step)
    assert [interpret(e).kind for e in events] == ["audio", "skip", "done"]
    assert interpret(events[0]).audio == b"\x01\x02"
    assert json.loads(events[1])["words"][0]["word"] == "héllo"  # a UTF-8 character split across chunks


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_crlf_comments_multiline_and_named_events(step):
    stream = (
        b': keep-alive\r\n\r\nevent: speech\r\ndata: {"type":\r\ndata: "speech.audio.delta", "audio": "AAA="}\r\n\r\n'
    )
    stream += b'data:[DONE]\r\n\r\ndata: {"unterminated": 1}'
    parser = SSEParser()
    events = []
    for i in range(0, len(stream), step):
        events += parser.feed(stream[i : i + step])
    assert [e.event for e in events] == ["speech", "message"]
    assert interpret(events[0].data).audio == b"\x00\x00"
    assert interpret(events[1].data).kind == "done"
    assert parser.close() == []  # a last event without its blank line is dropped


def test_interpret_every_dialect():
    assert interpret(json.dumps({"type": "speech.audio.delta", "audio": "AQI="})).audio == b"\x01\x02"
    assert interpret(json.dumps({"type": "speech.audio.done", "usage": {}})).kind == "done"
    assert interpret(json.dumps({"type": "conversation.item.audio_output.delta", "delta": "AQ=="})).audio == b"\x01"
    assert interpret(json.dumps({"type": "conversation.item.audio_output.done"})).kind == "done"
    assert interpret(json.dumps({"type": "session.created", "session": {}})).kind == "skip"
    failed = {"type": "conversation.item.tts.failed", "error": {"message": "bad voice"}}
    assert interpret(json.dumps(failed)) == interpret(json.dumps({"error": {"message": "bad voice"}}))
    assert interpret(json.dumps({"error": {"message": "boom"}})).message == "boom"
    assert interpret("not json").kind == "error"


class SlowStream(httpx.AsyncByteStream):
    """A response body delivered in pieces, with a pause before each."""

    def __init__(self, pieces: list[bytes], gap_s: float) -> None:
        self.pieces, self.gap_s = pieces, gap_s

    async def __aiter__(self):
        for piece in self.pieces:
            await asyncio.sleep(self.gap_s)
            yield piece


def transport(pieces: list[bytes], content_type: str, status: int = 200, gap_s: float = 0.02):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, headers={"content-type": content_type}, stream=SlowStream(pieces, gap_s))

    return httpx.MockTransport(handler), seen


async def timed(target: Target, pieces: list[bytes], content_type: str, status: int = 200) -> tuple[Record, list]:
    mock, seen = transport(pieces, content_type, status)
    async with httpx.AsyncClient(transport=mock) as client:
        record = Record(target.name, 1, "closed", 0, 0, 5)
        await run_http(client, target, "Hello", record, timeout_s=10)
    return finish_record(record, target, first_audio_bound_s=1.0), seen


async def test_together_sse_request():
    target = Target("http://x/v1", encoding="pcm_f32le", sample_rate=16000)
    audio = pcm(tone(0.5, 16000), "pcm_f32le")
    words = {"object": "audio.tts.word_timestamps", "words": []}
    stream = sse(words, together_chunk(audio[:8000]), together_chunk(audio[8000:]), b"[DONE]")
    record, seen = await timed(target, [stream[:40], stream[40:9000], stream[9000:]], "text/event-stream")
    assert seen[0]["stream"] is True and seen[0]["response_encoding"] == "pcm_f32le"
    assert record.ok and record.status == 200 and record.chunks == 2
    assert record.audio_s == pytest.approx(0.5)
    assert record.ttfb_s < record.ttfa_s <= record.ttlb_s  # the first bytes carried only word timings
    assert record.rtf == pytest.approx(record.ttlb_s / 0.5)
    assert record.bytes == len(stream) and record.audio_bytes == len(audio)


async def test_openai_byte_stream_of_mp3():
    target = Target("http://x", api="openai", format="mp3", stream="bytes", model="tts-1", voice="alloy")
    data = container(tone(1.0), "mp3")
    record, seen = await timed(target, [data[:100], data[100:1500], data[1500:]], "audio/mpeg")
    assert seen[0]["stream_format"] == "audio" and seen[0]["response_format"] == "mp3"
    assert record.ok and record.audio_s == pytest.approx(1.0, abs=0.03)
    assert record.ttfa_s > record.ttfb_s  # 100 bytes of an MP3 are no audio yet


async def test_error_status_and_in_band_error():
    target = Target("http://x")
    body = json.dumps({"error": {"message": "at capacity", "type": "rate_limit"}}).encode()
    record, _ = await timed(target, [body], "application/json", status=429)
    assert (record.status, record.error_type, record.error) == (429, "http_429", "at capacity")
    stream = sse(together_chunk(b"\x00\x00" * 100), {"error": {"message": "engine died"}}, b"[DONE]")
    record, _ = await timed(target, [stream], "text/event-stream")
    assert record.error_type == "stream_error" and record.audio_s > 0 and not record.realtime


async def test_sse_asked_but_not_given():
    record, _ = await timed(Target("http://x"), [pcm(tone(0.1), "pcm_s16le")], "application/octet-stream")
    assert record.error_type == "protocol"


def test_playback_stalls():
    # 1 s of audio in 4 equal chunks; playback starts at the first (t=1).
    assert max_stall([1.0, 1.1, 1.2, 1.3], [1, 1, 1, 1], 0, 1.0) == 0.0
    # the third chunk comes at t=2, when only 0.5 s (chunks 1-2) had played since t=1: 0.5 s stall
    assert max_stall([1.0, 1.2, 2.0, 2.1], [1, 1, 1, 1], 0, 1.0) == pytest.approx(0.5)
