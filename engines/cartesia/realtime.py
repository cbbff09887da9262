"""A Cartesia session for text that arrives in pieces: continuations on Cartesia's websocket.

The text is segmented here exactly as for the local models (each sentence as soon as it ends,
unfinished text at ``max_partial_chars``), and each released piece goes to Cartesia at once as an
input on the session's context with ``continue: true`` and ``max_buffer_delay_ms: 0``: Cartesia
keeps the prosody flowing across inputs, and ``clear`` has the same meaning as elsewhere (text not
yet released is dropped). The commit sends the rest with ``continue: false``.

Cartesia expires a context about a second after its audio ends. When text resumes after the
audio for everything sent so far has gone quiet for :data:`ROLLOVER_QUIET_S`, the session ends
that context and continues in a new one; its audio and word timings carry on from where the
previous context's stopped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from engines.base import (
    BYTES_PER_SAMPLE,
    EncodedPcm,
    EngineSession,
    SessionEnd,
    SessionEvent,
    SessionParams,
    WordTiming,
    WordTimings,
)
from engines.cartesia import upstream_errors
from engines.cartesia.mapping import build_tts_body, cartesia_model_id
from engines.cartesia.sse import word_timings
from engines.cartesia.websocket import CartesiaSocket, Context
from engines.errors import InvalidRequest, UpstreamError
from engines.histogram import Histogram
from engines.pronunciation import Pronouncer, timing_restorer
from engines.text import TextSegmenter, session_segmenter


class Counters(Protocol):
    """What a realtime session reports to its engine (CartesiaEngine), named here so this module
    does not import the engine that imports it."""

    upstream_latency: Histogram

    def count(self, counter: str, amount: int = 1) -> None: ...


#: A context whose audio has been silent this long is ended before more text is sent (Cartesia: ~1 s).
ROLLOVER_QUIET_S = 0.5
#: Longest piece sent as one input when the client gives no smaller max_partial_length.
MAX_PIECE_CHARS = 500


class CartesiaRealtimeSession(EngineSession):
    def __init__(
        self, engine: Counters, socket: CartesiaSocket, params: SessionParams, voice_id: str, default_model_id: str
    ) -> None:
        super().__init__(params)
        self._engine = engine
        self._socket = socket
        self._voice_id = voice_id
        self._model_id = cartesia_model_id(params.model, default_model_id)
        # The request's segment mode within Cartesia's longest input (engines/text.py).
        longest = TextSegmenter(first_chars=MAX_PIECE_CHARS, max_chars=MAX_PIECE_CHARS, never_chars=MAX_PIECE_CHARS)
        self._segmenter = session_segmenter(params, longest)
        self._pronouncer = Pronouncer(params.pronunciations)  # text only: /IPA/ entries stay as written
        self._restorer = timing_restorer() if self._pronouncer and params.word_timestamps else None
        self._contexts: asyncio.Queue[Context | None] = asyncio.Queue()  # in order; None: no more
        self._opened: list[Context] = []
        self._context: Context | None = None  # the one inputs go to
        self._sent_text = False
        self._committed = False
        self._closed = False
        self._finished = False

    # -- input ----------------------------------------------------------------------------------
    async def feed(self, text: str) -> None:
        self._check_open()
        for piece in self._segmenter.feed(text):
            await self._send(piece, last=False)

    async def commit(self) -> None:
        self._check_open()
        self._committed = True
        pieces = self._segmenter.finish()
        for piece in pieces[:-1]:
            await self._send(piece, last=False)
        if pieces or self._context is not None:
            await self._send(pieces[-1] if pieces else "", last=True)
        self._contexts.put_nowait(None)

    async def clear(self) -> None:
        self._check_open()
        self._segmenter.clear()

    async def _send(self, piece: str, *, last: bool) -> None:
        context = self._context
        if context is not None and context.quiet_for() > ROLLOVER_QUIET_S:
            # Its audio is over and it is about to expire: end it and go on in a fresh context.
            context.retired = True
            await self._socket.send(self._body(context, "", last=True))
            context = None
        if context is None:
            if not self._opened:  # the session's first input: now a request goes upstream
                self._engine.count("requests")
            try:
                context = self._context = await self._socket.open_context()
            except UpstreamError:  # Cartesia unreachable or refusing: an upstream error, as on HTTP
                self._engine.count("upstream_errors")
                raise
            self._engine.count("websocket_contexts")
            self._opened.append(context)
            self._contexts.put_nowait(context)
        spoken = self._pronouncer.rewrite(piece)
        if self._restorer is not None and piece:
            self._restorer.add(spoken)
        # Inputs must join into a valid transcript: the segmenter strips the space between pieces.
        text = f" {spoken.text}" if piece and self._sent_text else spoken.text
        self._sent_text = self._sent_text or bool(piece)
        context.text_sent_at = time.monotonic()
        context.first_text_at = context.first_text_at or context.text_sent_at
        await self._socket.send(self._body(context, text, last=last))

    def _body(self, context: Context, text: str, *, last: bool) -> dict[str, Any]:
        body = build_tts_body(self.params, text, model_id=self._model_id, voice_id=self._voice_id)
        body.update(context_id=context.id, max_buffer_delay_ms=0)
        body["continue"] = not last
        return body

    # -- output ---------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[SessionEvent]:
        output = self.params.output
        encoding = output.pcm_encoding
        offset = 0  # samples emitted so far, across contexts
        while (context := await self._contexts.get()) is not None:
            start_s = offset / output.sample_rate
            try:
                while True:
                    reply = await context.receive()
                    if isinstance(reply, BaseException):
                        raise reply
                    kind = reply.get("type")
                    if kind == "chunk":
                        audio = _decode(reply.get("data"))
                        if audio and not context.answered:  # upstream latency: first text -> first audio
                            context.answered = True
                            self._engine.upstream_latency.observe(time.monotonic() - context.first_text_at)
                        if audio:
                            self._engine.count("chunks")
                            self._engine.count("bytes", len(audio))
                            yield EncodedPcm(audio, output.sample_rate, encoding, offset)
                            offset += len(audio) // BYTES_PER_SAMPLE[encoding]
                    elif kind == "timestamps":
                        words = word_timings(reply)
                        if words is not None:
                            words = _shifted(words, start_s)
                        if words is not None and self._restorer is not None:  # the input's words, as written
                            words = WordTimings(self._restorer.feed(words.words))
                        if words is not None and words.words:
                            yield words
                    elif kind == "error":
                        if context.retired:
                            break  # it had expired before we ended it: its audio was all there
                        self._engine.count("upstream_errors")
                        raise upstream_errors.from_error_event(reply, self._engine.api_key)
                    if kind == "done" or reply.get("done") is True:
                        break
            finally:
                self._socket.forget(context)
            if self._closed:
                return
        if not self._closed:
            self._finished = True
            if self._restorer is not None and (rest := self._restorer.flush()):
                yield WordTimings(rest)
            yield SessionEnd()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._finished:
            for context in self._opened:
                self._socket.forget(context)
                context.deliver({"type": "done", "done": True, "context_id": context.id})  # wakes events()
            if self._context is not None:
                try:
                    await self._socket.send({"context_id": self._context.id, "cancel": True})
                except UpstreamError:
                    pass  # the connection is gone: so is the generation
        self._contexts.put_nowait(None)

    def _check_open(self) -> None:
        if self._closed or self._committed:
            raise InvalidRequest("This session is closed or its input was already committed.")


def _decode(data: Any) -> bytes:
    if not data:
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError) as exc:
        raise UpstreamError("Cartesia sent an audio chunk that is not valid base64.") from exc


def _shifted(words: WordTimings, seconds: float) -> WordTimings:
    if not seconds:
        return words
    return WordTimings([WordTiming(w.word, w.start + seconds, w.end + seconds) for w in words.words])
