"""Cartesia's ``/tts/websocket``: one connection per engine, many contexts, replies routed by ``context_id``.

What Cartesia documents for it (API reference "Text to Speech (WebSocket)" and the guides on
contexts and buffering, Cartesia-Version 2024-11-13 to 2026-03-01):

* Connect to ``wss://api.cartesia.ai/tts/websocket`` with the key (``X-API-Key`` header, or
  ``api_key`` in the query for browsers) and the version (``Cartesia-Version`` header or
  ``cartesia_version`` query). One connection multiplexes many generations ("contexts").
* A generation request is the HTTP body (``model_id``, ``transcript``, ``voice``, ``language``,
  ``output_format`` with ``container: raw``, ``add_timestamps``, ``generation_config``) plus
  ``context_id`` and ``continue``: every input that more will follow carries ``continue: true``;
  the last one ``continue: false`` (possibly with an empty transcript). Inputs must concatenate to
  a valid transcript, spaces included. ``max_buffer_delay_ms`` (default 3000) lets Cartesia hold
  text back until it sees a natural break; 0 generates each input as it comes.
* ``{"context_id", "cancel": true}`` stops a context.
* Replies carry ``context_id`` and ``type``: ``chunk`` (base64 audio in ``data``), ``timestamps``
  (``word_timestamps: {words, start, end}`` in seconds from the context's start), ``done``,
  ``flush_done``/``phoneme_timestamps`` (not needed here) and ``error`` (``error`` or
  ``title``/``message``, with ``status_code``; it ends the context).
* A context expires about a second after its last audio went out; input sent to it later is
  not accepted (see :mod:`engines.cartesia.realtime` for how a pause in the text is bridged).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from engines.errors import ServiceUnavailable, UpstreamError, UpstreamTimeout

logger = logging.getLogger(__name__)


class ConnectionLost(UpstreamError):
    """The websocket to Cartesia closed while a context was still speaking."""


class ClientTooSlow(ServiceUnavailable):
    """A realtime context's client stopped taking its audio: the context was cut off at its byte cap."""

    code = "client_too_slow"


class Context:
    """One upstream generation: Cartesia's replies for it, and when its audio last arrived.

    The replies wait here until the session's reader takes them; ``max_buffered_bytes`` bounds what
    may wait. Past it the replies held are dropped, the reader finds :class:`ClientTooSlow` next, and
    :meth:`deliver` says so, so the socket cancels the context upstream.
    """

    def __init__(self, context_id: str, max_buffered_bytes: int | None = None) -> None:
        self.id = context_id
        self._replies: collections.deque[tuple[dict[str, Any] | BaseException, int]] = collections.deque()
        self._ready = asyncio.Event()
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered_bytes = 0
        self.overflowed = False
        self.text_sent_at = 0.0
        self.first_text_at = 0.0  # when its first text went out (upstream latency runs from here)
        self.answered = False  # its first audio has arrived
        self.audio_at = 0.0  # monotonic time of the last audio chunk
        self.retired = False  # ended by us because it went quiet (an error from it then means "expired")

    def deliver(self, reply: dict[str, Any] | BaseException, size: int = 0) -> bool:
        """Queue ``reply`` (``size``: its bytes on the wire); True when this one overflowed the cap."""
        if self.overflowed:
            return False
        if isinstance(reply, dict) and reply.get("type") == "chunk":
            self.audio_at = time.monotonic()
        self.buffered_bytes += size
        if self.max_buffered_bytes is not None and self.buffered_bytes > self.max_buffered_bytes:
            self.overflowed = True
            self._replies.clear()
            self.buffered_bytes = 0
            reply, size = (
                ClientTooSlow(
                    f"The client stopped reading: more than {self.max_buffered_bytes} bytes of Cartesia's audio "
                    "for this item were waiting (TTS_CARTESIA_MAX_BUFFERED_BYTES), so it was cancelled."
                ),
                0,
            )
        self._replies.append((reply, size))
        self._ready.set()
        return self.overflowed

    async def receive(self) -> dict[str, Any] | BaseException:
        while not self._replies:
            self._ready.clear()
            await self._ready.wait()
        reply, size = self._replies.popleft()
        self.buffered_bytes -= size
        return reply

    def quiet_for(self) -> float:
        """Seconds since the audio for the latest text stopped arriving (0 while it may still come)."""
        if self.audio_at <= self.text_sent_at:
            return 0.0
        return time.monotonic() - self.audio_at


class CartesiaSocket:
    """The engine's connection, opened on first use and again after it drops."""

    def __init__(self, settings: Any, api_key: str | None) -> None:
        self._settings = settings
        self._api_key = api_key
        self._conn: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._contexts: dict[str, Context] = {}
        self.connects = 0

    @property
    def url(self) -> str:
        base = self._settings.base_url.rstrip("/")
        base = "wss://" + base[len("https://") :] if base.startswith("https://") else base
        base = "ws://" + base[len("http://") :] if base.startswith("http://") else base
        return f"{base}/tts/websocket?" + urlencode({"cartesia_version": self._settings.version})

    async def open_context(self) -> Context:
        await self._connected()
        context = Context(f"ctx_{uuid.uuid4().hex}", self._settings.max_buffered_bytes)
        self._contexts[context.id] = context
        return context

    async def send(self, message: dict[str, Any]) -> None:
        conn = await self._connected()
        try:
            await conn.send(json.dumps(message))
        except Exception as exc:
            raise ConnectionLost(f"Lost the websocket to Cartesia: {type(exc).__name__}.") from exc

    def forget(self, context: Context) -> None:
        self._contexts.pop(context.id, None)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if self._reader is not None:
            self._reader.cancel()
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already gone, or its loop is: nothing left to release
                pass

    # -- internals ----------------------------------------------------------------------------
    async def _connected(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a connection belongs to the loop that opened it
            self._loop, self._lock, self._conn, self._contexts = loop, asyncio.Lock(), None, {}
        async with self._lock:
            if self._conn is None:
                self._conn = await self._connect()
                self._reader = asyncio.create_task(self._read(self._conn), name="cartesia-websocket-reader")
            return self._conn

    async def _connect(self) -> Any:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        headers = {"Cartesia-Version": self._settings.version, "User-Agent": "tts-server (cartesia proxy)"}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            conn = await connect(
                self.url,
                additional_headers=headers,
                open_timeout=self._settings.connect_timeout_s,
                max_size=self._settings.max_message_bytes,  # a bounded read, whatever upstream sends
            )
        except InvalidStatus as exc:
            from engines.cartesia import upstream_errors

            response = exc.response
            raise upstream_errors.from_response(
                response.status_code, response.body or b"", response.headers, self._api_key
            ) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout("Timed out connecting to Cartesia's websocket.") from exc
        except OSError as exc:
            raise UpstreamError(f"Could not reach Cartesia's websocket: {type(exc).__name__}.") from exc
        self.connects += 1
        return conn

    async def _read(self, conn: Any) -> None:
        try:
            async for raw in conn:
                try:
                    reply = json.loads(raw)
                except ValueError:
                    logger.warning("Cartesia sent a websocket message that is not JSON")
                    continue
                context = self._contexts.get(reply.get("context_id")) if isinstance(reply, dict) else None
                if context is not None and context.deliver(reply, len(raw)):
                    # Its client stopped reading: stop the generation, drop what still comes for it.
                    self.forget(context)
                    logger.warning("cartesia context %s cut off at its buffer cap", context.id)
                    try:
                        await conn.send(json.dumps({"context_id": context.id, "cancel": True}))
                    except Exception:
                        pass  # the connection is going: so is the generation
        except Exception as exc:
            logger.warning("the websocket to Cartesia failed: %s", type(exc).__name__)
        finally:
            if self._conn is conn:
                self._conn = None
            lost = ConnectionLost("The websocket to Cartesia closed mid-generation.")
            for context in list(self._contexts.values()):
                context.deliver(lost)
            self._contexts.clear()
