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

from server.errors import APIError, as_api_error
from server.protocol import stream_chunk

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


async def sse_stream(model: str, item_id: str, first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Frame audio bytes as Together SSE chunks; a failure mid-stream becomes a final error event."""
    try:
        if first:
            yield sse_event(stream_chunk(model, item_id, base64.b64encode(first).decode()))
        async for data in rest:
            yield sse_event(stream_chunk(model, item_id, base64.b64encode(data).decode()))
    except APIError as exc:
        yield sse_event(exc.body())
    except Exception as exc:  # the status line is gone; report in-band instead of dropping the stream
        yield sse_event(as_api_error(exc).body())
    yield DONE


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for data in rest:
        yield data


async def first_chunk(stream: AsyncIterator[bytes]) -> bytes:
    """The first non-empty chunk, so errors before any audio still get a proper status code."""
    async for data in stream:
        if data:
            return data
    return b""


async def collect(first: bytes, stream: AsyncIterator[bytes]) -> bytes:
    parts = [first]
    async for data in stream:
        parts.append(data)
    return b"".join(parts)


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
