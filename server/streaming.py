"""Response framing: Together's SSE stream, and helpers that tie generation to the client's life."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from starlette.requests import Request

from engines.base import WordTiming, WordTimings
from server.errors import as_tts_error, error_body
from server.protocol import stream_chunk, word_timestamps_event
from server.request_log import current

logger = logging.getLogger(__name__)
T = TypeVar("T")

SSE_HEADERS = {
    "content-type": "text/event-stream",  # exact: no charset suffix
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # tell nginx-style proxies not to buffer the stream
}
DONE = b"data: [DONE]\n\n"


class ClientDisconnected(Exception):
    """The client went away before the response was ready; nothing is sent."""


def sse_event(payload: dict) -> bytes:
    # One `data:` line and a blank line, never an `event:` line: the v2 SDK drops named events.
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


Item = bytes | WordTimings  # what SpeechService.audio_events yields


async def sse_stream(model: str, item_id: str, first: Item, rest: AsyncIterator[Item]) -> AsyncIterator[bytes]:
    """Frame audio (and word timings) as Together SSE events; a failure mid-stream becomes a final error event."""

    def frame(item: Item) -> bytes:
        if isinstance(item, WordTimings):
            return sse_event(word_timestamps_event(item_id, item.words))
        return sse_event(stream_chunk(model, item_id, base64.b64encode(item).decode()))

    async with contextlib.aclosing(rest):  # a client that leaves closes the source now, not at collection
        try:
            if first:
                yield frame(first)
            async for item in rest:
                yield frame(item)
        except Exception as exc:  # the status line is gone; report in-band instead of dropping the stream
            error = as_tts_error(exc)
            if (trace := current()) is not None:
                trace.error_code = error.code
            yield sse_event(error_body(error))
        yield DONE


async def audio_only(first: Item, rest: AsyncIterator[Item]) -> AsyncIterator[bytes]:
    """The audio bytes, in order (word timings are not part of a plain audio body).

    A failure after the status line has gone out cannot become an error response any more, and a raw
    body has no place for an error event: the body ends where the audio did, and the log says why.
    """
    async with contextlib.aclosing(rest):  # a client that leaves closes the source (and its encoder) now
        try:
            async for item in prepend(first, rest):
                if isinstance(item, bytes) and item:
                    yield item
        except Exception as exc:
            error = as_tts_error(exc)
            logger.warning("audio body ended early after an error (%s): %s", error.code, error.message)


async def first_item(stream: AsyncIterator[Item]) -> Item:
    """The first non-empty item, so errors before any audio still get a proper status code."""
    async for item in stream:
        if item:
            return item
    return b""


async def collect(first: Item, stream: AsyncIterator[Item]) -> tuple[bytes, list[WordTiming]]:
    audio: list[bytes] = []
    words: list[WordTiming] = []
    async for item in prepend(first, stream):
        if isinstance(item, WordTimings):
            words.extend(item.words)
        else:
            audio.append(item)
    return b"".join(audio), words


async def prepend(first: Item, rest: AsyncIterator[Item]) -> AsyncIterator[Item]:
    if first:
        yield first
    async for item in rest:
        yield item


async def unless_disconnected(request: Request, work: Awaitable[T], poll_s: float = 0.1) -> T:
    """Await ``work`` but cancel it if the client disconnects meanwhile.

    Starlette notices disconnects only once a streaming body is being sent; before that (while a
    handler waits for the first audio, or buffers a WAV) this watcher stops the generation.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                # Let the cancellation land: the generator it drives is closed before we return.
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise ClientDisconnected()
    finally:
        if not task.done():
            task.cancel()
