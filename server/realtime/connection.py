"""One realtime websocket: text in, audio out, several items in order.

An *item* is the text between two commits. Its engine session opens with the first append, so
text released early (a sentence end, ``max_partial_length``) is synthesized while later text is
still arriving; the commit ends the item. Items are spoken strictly in order: one pump task sends
each item's audio to the end before the next item's, while later items may already be generating
(their audio waits in their own queues). Three tasks share the connection: the reader (client
events), the pump (audio out) and a watchdog (idle and overall time limits). When any of them ends
(the client left, a limit passed) the others are cancelled and every open item's session is
closed, which cancels its work at the model's next step.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from engines.base import Engine, EngineSession, SessionParams, WordTimings
from server.errors import (
    InputTooLong,
    InvalidRequest,
    Overloaded,
    ServiceUnavailable,
    TTSError,
    as_tts_error,
    http_status,
)
from server.json_depth import json_depth
from server.realtime import protocol as events
from server.realtime.items import item_audio, item_params, tempo, validate
from server.realtime.protocol import SessionOptions
from server.services.speech import PreparedSpeech, SpeechService, check_model
from server.settings import Settings
from server.tenants import DEFAULT_TENANT, StreamSlot, Tenant

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Item:
    id: str
    engine: Engine  # the model the item was opened with (an update applies from the next item on)
    session: EngineSession
    params: SessionParams
    container: str | None
    speed: float  # the time-stretch the server applies (1.0: the model speaks at the asked speed itself)
    chars: int = 0
    failed: bool = False
    slot: StreamSlot | None = None  # the tenant's concurrent stream, held until the item's audio ends
    prepared: PreparedSpeech | None = None
    opened_at: float = 0.0  # time.monotonic() of its first text (first-audio latency counts from here)
    status: int | None = None  # as an HTTP request's: 200 spoken, 499 cut off, else its error's status


FAREWELL_TIMEOUT_S = 2.0


class RealtimeConnection:
    def __init__(
        self,
        websocket: WebSocket,
        service: SpeechService,
        engine: Engine,
        options: SessionOptions,
        tenant: Tenant = DEFAULT_TENANT,
    ) -> None:
        self.ws = websocket
        self.tenant = tenant
        self.service = service
        self.settings: Settings = service.settings
        self.engine = engine
        self.options = options
        self.session_id = f"sess_{uuid.uuid4().hex}"
        self._send_lock = asyncio.Lock()
        self._queue: asyncio.Queue[Item] = asyncio.Queue()  # items in the order they are spoken
        self._open: list[Item] = []  # items whose audio is not finished: closed on disconnect
        self._current: Item | None = None  # the item appends go to
        self._count = 0
        self._ended = False  # the final tts.failed (a limit, shutdown) is sent: nothing follows it
        self._last_activity = asyncio.get_running_loop().time()

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.send(events.session_created(self._public()))
        tasks = [
            asyncio.create_task(self._read(), name="realtime-read"),
            asyncio.create_task(self._pump(), name="realtime-pump"),
            asyncio.create_task(self._watch(), name="realtime-watch"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, WebSocketDisconnect):
                    logger.warning("realtime session %s ended with %r", self.session_id, result)
            # Whatever is still open (queued items, an item mid-stream) stops at the next model step.
            for item in self._open:
                await item.session.close()
                self._finish_item(item, "cancelled")

    def _public(self) -> dict[str, Any]:
        output = item_params(self.service, self.engine, self.options).output
        return self.options.public(self.engine, self.session_id, output)

    async def send(self, event: dict[str, Any], *, final: bool = False) -> None:
        async with self._send_lock:  # the reader, the pump and the watchdog all send
            if self._ended:  # a session-ending error went out: it stays the last event
                return
            self._ended = final
            await self.ws.send_text(json.dumps(event, separators=(",", ":")))
        self._touch()

    async def fail(self, error: TTSError, item_id: str | None = None, *, final: bool = False) -> None:
        await self.send(events.tts_failed(error, item_id), final=final)

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()

    # -- client events --------------------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            self._touch()
            try:
                await self._handle(message.get("text"))
            except TTSError as err:  # a bad event: say so, and keep the connection
                await self.fail(err)

    async def _handle(self, text: str | None) -> None:
        if text is None:
            raise InvalidRequest("Send events as JSON text frames.", code="invalid_event")
        if json_depth(text) > self.settings.max_json_depth:
            raise InvalidRequest(
                f"Events nest deeper than {self.settings.max_json_depth} levels (TTS_MAX_JSON_DEPTH).",
                code="invalid_event",
            )
        try:
            event = json.loads(text)
        except ValueError:
            raise InvalidRequest("Events must be JSON objects.", code="invalid_event") from None
        if not isinstance(event, dict):
            raise InvalidRequest("Events must be JSON objects.", code="invalid_event")
        kind = event.get("type")
        if kind == "input_text_buffer.append":
            await self._append(event.get("text"))
        elif kind == "input_text_buffer.commit":
            await self._commit()
        elif kind == "input_text_buffer.clear":
            await self._clear()
        elif kind == "tts_session.updated":
            await self._update(event.get("session"), event.get("context_id"))
        else:
            known = "tts_session.updated, input_text_buffer.append, input_text_buffer.commit, input_text_buffer.clear"
            raise InvalidRequest(
                f"Unknown event type {kind!r}; expected one of: {known}.", param="type", code="invalid_event"
            )

    async def _append(self, text: Any) -> None:
        if not isinstance(text, str):
            raise InvalidRequest("input_text_buffer.append needs a string 'text'.", param="text", code="invalid_event")
        if not text:
            return
        item = self._current
        if item is not None and item.chars + len(text) > self.settings.max_input_chars:
            raise InputTooLong(
                f"Item {item.id} would exceed {self.settings.max_input_chars} characters (TTS_MAX_INPUT_CHARS); "
                "commit it and continue in a new item."
            )
        if item is None:
            item = await self._open_item(len(text))  # charges the item and its first text
        else:
            try:  # past a limit this text is refused (the item goes on with what it has)
                self.service.limiter.charge_chars(self.tenant, len(text))
            except TTSError as err:
                await self.fail(err, item.id)
                return
        item.chars += len(text)
        await self.send(events.text_received(text, item.id))
        try:
            await item.session.feed(text)
        except Exception as exc:  # e.g. the model's queue is full: this item cannot go on
            await self._fail_item(item, as_tts_error(exc))

    async def _commit(self) -> None:
        item, self._current = self._current, None
        if item is None or item.failed:
            return  # nothing buffered: nothing to say
        try:
            await item.session.commit()
        except Exception as exc:
            await self._fail_item(item, as_tts_error(exc))

    async def _clear(self) -> None:
        item = self._current
        if item is not None and not item.failed:
            await item.session.clear()
        await self.send(events.buffer_cleared(item.id if item else None))

    async def _update(self, changes: Any, context_id: Any = None) -> None:
        if not isinstance(changes, dict):
            raise InvalidRequest("tts_session.updated needs a 'session' object.", param="session", code="invalid_event")
        # Together: "if no context_id is specified, all contexts are updated". A connection here is one
        # context (its items are spoken in order), so an update without one, or naming this session,
        # applies to every item opened after it.
        context_id = changes.pop("context_id", context_id)
        if context_id is not None and context_id != self.session_id:
            raise InvalidRequest(
                f"Unknown context_id {context_id!r}: this connection is one context, {self.session_id!r}; "
                "leave context_id out to update it.",
                param="context_id",
                code="invalid_event",
            )
        try:
            options = SessionOptions.model_validate({**self.options.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidRequest(f"Invalid value for 'session.{param}': {first['msg']}", param=param) from None
        engine = self.service.pool.get_ready(options.model)
        await validate(self.service, engine, options)
        # Applies from the next item on: an item's session was planned when it opened.
        self.options, self.engine = options, engine
        await self.send(events.session_updated(self._public()))

    # -- items ----------------------------------------------------------------------------------
    async def _open_item(self, chars: int) -> Item:
        # One socket must not fill the model's queue on its own: items wait in order, so past the cap the
        # client is told to wait for an audio_done before it appends more.
        limit = self.settings.realtime_max_pending_items
        if len(self._open) >= limit:
            raise Overloaded(
                f"{limit} items of this session are not spoken yet (TTS_REALTIME_MAX_PENDING_ITEMS); "
                "wait for an item's conversation.item.audio_output.done before appending more."
            )
        check_model(self.tenant, self.engine.model_id)
        params = item_params(self.service, self.engine, self.options)
        params.priority = self.tenant.priority
        # Each item is a request of the tenant's: counted, and one of its concurrent streams.
        slot = self.service.limiter.admit(self.tenant, chars)
        try:
            session = await self.service.open(self.engine, params)
        except BaseException:
            slot.release()
            raise
        self._count += 1
        speed = tempo(self.engine, self.options)
        item = Item(f"tts_{self._count}", self.engine, session, params, self.options.container, speed, slot=slot)
        item.opened_at = time.monotonic()
        self._current = item
        self._open.append(item)
        self._queue.put_nowait(item)
        return item

    async def _fail_item(self, item: Item, error: TTSError) -> None:
        item.failed = True
        if self._current is item:
            self._current = None
        await item.session.close()
        self._finish_item(item, http_status(error))
        await self.fail(error, item.id)

    def _finish_item(self, item: Item, status: int | str) -> None:
        """The item is over: free its stream, and account for it (once) like one HTTP request."""
        if item.slot is not None:
            item.slot.release()
        if item.status is not None:
            return
        item.status = 499 if status == "cancelled" else int(status)
        usage = getattr(self.ws.app.state, "usage", None)
        if usage is not None:
            prepared = item.prepared
            first = prepared.first_audio_at if prepared is not None else None
            usage.record(
                tenant=self.tenant.name,
                model=item.engine.model_id,
                status=item.status,
                chars=item.chars,
                audio_seconds=prepared.sent_seconds if prepared is not None else 0.0,
                first_audio_s=None if first is None else first - item.opened_at,
            )

    async def _pump(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if not item.failed:
                    await self._speak(item)
            finally:
                self._open.remove(item)
                if item.status is None and not item.failed:
                    # Spoken to the end, or cut off (the connection is closing: run() cancels the pump).
                    self._finish_item(item, 200 if item.prepared and item.prepared.done else "cancelled")

    async def _speak(self, item: Item) -> None:
        prepared = item.prepared = PreparedSpeech(item.engine, item.params, item.session, item.slot)
        audio = item_audio(self.service, prepared, speed=item.speed, container=item.container)
        try:
            async with contextlib.aclosing(audio) as chunks:
                async for chunk in chunks:
                    if item.failed:
                        return
                    if isinstance(chunk, WordTimings):
                        await self.send(events.word_timestamps(item.id, chunk.words))
                    elif chunk:
                        await self.send(events.audio_delta(item.id, base64.b64encode(chunk).decode()))
        except (WebSocketDisconnect, asyncio.CancelledError):
            raise
        except Exception as exc:
            if not item.failed:
                item.failed = True
                if self._current is item:  # later appends start a new item instead of hitting a dead one
                    self._current = None
                error = as_tts_error(exc)
                self._finish_item(item, http_status(error))
                await self.fail(error, item.id)
            return
        if not item.failed:
            prepared.done = True
            await self.send(events.audio_done(item.id))

    # -- limits ---------------------------------------------------------------------------------
    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.settings.realtime_max_session_s
        aborted = self.ws.app.state.drain.aborted  # the shutdown's grace period is over
        while True:
            if aborted.is_set():
                error = ServiceUnavailable(
                    "The server is shutting down and ended this session; reconnect to another replica.",
                    code="server_shutdown",
                )
                break
            idle_until = self._last_activity + self.settings.realtime_idle_timeout_s
            now = loop.time()
            if now >= ends_at:
                error = InvalidRequest(
                    f"The session reached its limit of {self.settings.realtime_max_session_s:g} s "
                    "(TTS_REALTIME_MAX_SESSION_S); reconnect to go on.",
                    code="session_expired",
                )
                break
            if now >= idle_until:
                error = InvalidRequest(
                    f"No events or audio for {self.settings.realtime_idle_timeout_s:g} s "
                    "(TTS_REALTIME_IDLE_TIMEOUT_S); closing.",
                    code="idle_timeout",
                )
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(aborted.wait(), min(ends_at, idle_until) - now)
        # Stop the work first: the pump may be stuck in a send to a client that stopped reading, holding
        # the send lock, so the farewell and the close get a bounded wait each and never block the exit.
        for item in list(self._open):
            await item.session.close()
        for farewell in (self.fail(error, final=True), self.ws.close(code=1000, reason=error.code)):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(farewell, FAREWELL_TIMEOUT_S)
