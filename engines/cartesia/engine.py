"""``cartesia/sonic`` (and ``cartesia/sonic-*``): Cartesia's hosted Sonic behind Together's API.

No audio is produced here: the request is mapped to Cartesia's, and Cartesia's bytes are yielded
as :class:`EncodedChunk` the moment they arrive, already in the client's exact output format.
Streaming uses POST /tts/sse (raw PCM per event); everything else POST /tts/bytes (wav/mp3/raw).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from engines.base import (
    BYTES_PER_SAMPLE,
    EncodedChunk,
    EncodedPcm,
    Engine,
    EngineSession,
    SessionEnd,
    SessionEvent,
    SessionParams,
    Voice,
    WordTimings,
)
from engines.cartesia.client import CartesiaClient
from engines.cartesia.mapping import CARTESIA_LANGUAGES, build_tts_body, cartesia_model_id, check_request, uses_sse
from engines.cartesia.realtime import CartesiaRealtimeSession
from engines.cartesia.voices import UpstreamVoiceCache, VoiceResolver, load_cartesia_catalog
from engines.cartesia.websocket import CartesiaSocket
from engines.errors import InvalidRequest, ServiceUnavailable, TTSError, UpstreamError
from engines.histogram import LATENCY_BUCKETS, Histogram
from engines.pronunciation import Pronouncer, timing_restorer

if TYPE_CHECKING:
    from engines.cartesia.settings import CartesiaSettings

logger = logging.getLogger(__name__)

_COUNTERS = (
    "requests",
    "stream_requests",
    "bytes_requests",
    "chunks",
    "bytes",
    "upstream_errors",
    "websocket_contexts",  # realtime sessions' contexts on Cartesia's websocket (engines/cartesia/realtime.py)
)


class CartesiaEngine(Engine):
    sample_rate = 44100  # Together's default for Sonic, used when the client names no rate
    languages = CARTESIA_LANGUAGES
    hosted_ignores_output_options = False  # hosted Together honours every output field for Sonic
    default_encoding = "pcm_f32le"  # the spec's default holds for Sonic

    settings: CartesiaSettings

    def __init__(self, model_id: str, settings: CartesiaSettings) -> None:
        super().__init__(model_id, settings)
        self._client = CartesiaClient(settings)
        self._upstream_voices = (
            UpstreamVoiceCache(self._client.list_voices, settings.voices_ttl_s) if self._client.has_key else None
        )
        self._resolver: VoiceResolver | None = None
        key = settings.api_key
        self.api_key: str | None = key.get_secret_value() if key is not None else None
        self._socket = CartesiaSocket(settings, self.api_key)  # connects on the first realtime session
        # Every key from the start, so /stats has the same shape before the first request.
        self._counters: Counter[str] = Counter(dict.fromkeys(_COUNTERS, 0))
        self.upstream_latency = Histogram(LATENCY_BUCKETS)  # request sent -> first audio byte back

    # --- lifecycle -------------------------------------------------------------------------------

    async def load(self) -> None:
        self._voice_resolver()  # a broken operator catalog fails at startup, not on a request
        self._client.open()

    async def warmup(self) -> None:
        """Nothing: a warmup request would spend the operator's Cartesia credits at every start."""

    async def close(self) -> None:
        await self._client.aclose()
        await self._socket.aclose()

    @property
    def available(self) -> bool:
        return self._client.has_key

    # --- requests --------------------------------------------------------------------------------

    def _voice_resolver(self) -> VoiceResolver:
        if self._resolver is None:
            catalog = load_cartesia_catalog(self.settings.voices_file)
            self._resolver = VoiceResolver(catalog, self._upstream_voices)
        return self._resolver

    def voices(self) -> list[Voice]:
        return self._voice_resolver().voices()

    def _require_key(self) -> None:
        if not self.available:
            raise ServiceUnavailable(
                f"Model '{self.model_id}' is a proxy to Cartesia and this server has no Cartesia key: "
                "the operator must set CARTESIA_API_KEY."
            )

    def _with_sample_rate(self, params: SessionParams) -> SessionParams:
        """``params`` with an explicit output rate: ``sample_rate=None`` means the engine's own.

        The server's SpeechService already fills it in; this covers callers that use the engine
        directly, and is the only place the Cartesia code applies the default.
        """
        if params.output.sample_rate is not None:
            return params
        return dataclasses.replace(params, output=dataclasses.replace(params.output, sample_rate=self.sample_rate))

    async def open_session(self, params: SessionParams) -> EngineSession:
        self._require_key()
        params = self._with_sample_rate(params)
        check_request(params)
        voice_id = await self._voice_resolver().resolve(params.voice)
        # Text arriving in pieces (the realtime route) goes over Cartesia's websocket unless the operator
        # chose plain HTTP (realtime_transport), where each released segment is its own POST.
        if params.max_partial_chars is not None and self.settings.realtime_transport == "websocket":
            # Counted when its first input goes upstream: the realtime route opens sessions only to validate.
            return CartesiaRealtimeSession(self, self._socket, params, voice_id, self.settings.model_id)
        return CartesiaSession(self, params, voice_id)

    def count(self, counter: str, amount: int = 1) -> None:
        self._counters[counter] += amount

    async def proxy(self, params: SessionParams, text: str, voice_id: str) -> AsyncIterator[SessionEvent]:
        """One upstream request for ``text``; audio (and word timings) yielded as Cartesia sends them."""
        body = build_tts_body(
            params,
            text,
            model_id=cartesia_model_id(params.model, self.settings.model_id),
            voice_id=voice_id,
        )
        via_sse = uses_sse(params)
        self._counters["requests"] += 1
        self._counters["stream_requests" if via_sse else "bytes_requests"] += 1
        upstream = self._client.stream_sse(body) if via_sse else self._client.stream_bytes(body)
        encoding, offset = params.output.pcm_encoding, 0
        sent, waiting = time.perf_counter(), True
        try:
            # aclosing: when our consumer stops early (client gone), the upstream response closes now.
            async with aclosing(upstream) as chunks:
                async for data in chunks:
                    if isinstance(data, WordTimings):
                        yield data
                        continue
                    if waiting:
                        waiting = False
                        self.upstream_latency.observe(time.perf_counter() - sent)
                    self._counters["chunks"] += 1
                    self._counters["bytes"] += len(data)
                    if via_sse:  # raw PCM in the encoding we asked for: the server frames it
                        yield EncodedPcm(data, params.output.sample_rate, encoding, offset)
                        offset += len(data) // BYTES_PER_SAMPLE[encoding]
                    else:
                        yield EncodedChunk(data)
        except TTSError as exc:
            self._counters["upstream_errors"] += 1
            if isinstance(exc, UpstreamError):  # the operator's problem (key, outage, network): say so in the log
                logger.warning("cartesia request %s failed: %s", params.request_id, exc.message)
            raise

    def stats(self) -> dict[str, Any]:
        return {
            **self._counters,
            "available": self.available,
            "http2": self._client.http2,
            "voice_list_fetches": self._upstream_voices.fetches if self._upstream_voices else 0,
            "upstream_latency_seconds": self.upstream_latency.snapshot(),
        }


class CartesiaSession(EngineSession):
    """Buffers fed text until the commit, then makes one upstream request.

    Cartesia's HTTP endpoints take a whole transcript; truly incremental input uses its websocket
    (``context_id`` + ``continue``), which the realtime route brings.
    """

    def __init__(self, engine: CartesiaEngine, params: SessionParams, voice_id: str) -> None:
        super().__init__(params)
        self._engine = engine
        self._voice_id = voice_id
        self._text: list[str] = []
        self._committed = asyncio.Event()
        self._closed = False

    async def feed(self, text: str) -> None:
        self._check_open()
        self._text.append(text)

    async def commit(self) -> None:
        self._check_open()
        self._committed.set()

    async def clear(self) -> None:
        self._check_open()
        self._text.clear()

    async def events(self) -> AsyncIterator[SessionEvent]:
        await self._committed.wait()
        text = "".join(self._text).strip()
        if text and not self._closed:
            # The pronunciation dictionary, whole words; Sonic takes text only: /IPA/ entries stay as written.
            spoken = Pronouncer(self.params.pronunciations).rewrite(text)
            restorer = timing_restorer(spoken)
            async with aclosing(self._engine.proxy(self.params, spoken.text, self._voice_id)) as events:
                async for event in events:
                    if isinstance(event, WordTimings) and restorer is not None:
                        event = WordTimings(restorer.feed(event.words))
                    if not isinstance(event, WordTimings) or event.words:
                        yield event
            if restorer is not None and (rest := restorer.flush()):
                yield WordTimings(rest)
        if not self._closed:
            yield SessionEnd()

    async def close(self) -> None:
        self._closed = True
        self._committed.set()

    def _check_open(self) -> None:
        if self._closed or self._committed.is_set():
            raise InvalidRequest("This session is closed or its input was already committed.")
