"""``cartesia/sonic`` (and ``cartesia/sonic-*``): Cartesia's hosted Sonic behind Together's API.

No audio is produced here: the request is mapped to Cartesia's, and Cartesia's bytes are yielded
as :class:`EncodedChunk` the moment they arrive, already in the client's exact output format.
Streaming uses POST /tts/sse (raw PCM per event); everything else POST /tts/bytes (wav/mp3/raw).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from engines.base import EncodedChunk, Engine, SynthesisRequest, Voice
from engines.cartesia.client import CartesiaClient
from engines.cartesia.mapping import CARTESIA_LANGUAGES, build_tts_body, cartesia_model_id, check_request
from engines.cartesia.voices import UpstreamVoiceCache, VoiceResolver, load_cartesia_catalog
from server.errors import APIError, ServiceUnavailable

if TYPE_CHECKING:
    from server.settings import Settings

logger = logging.getLogger(__name__)

_COUNTERS = ("requests", "stream_requests", "bytes_requests", "chunks", "bytes", "upstream_errors")


class CartesiaEngine(Engine):
    sample_rate = 44100  # Together's default for Sonic, used when the client names no rate
    languages = CARTESIA_LANGUAGES
    hosted_ignores_output_options = False  # hosted Together honours every output field for Sonic

    def __init__(self, model_id: str, settings: Settings) -> None:
        super().__init__(model_id, settings)
        self._client = CartesiaClient(settings)
        self._upstream_voices = (
            UpstreamVoiceCache(self._client.list_voices, settings.cartesia_voices_ttl_s)
            if self._client.has_key
            else None
        )
        self._resolver: VoiceResolver | None = None
        # Every key from the start, so /stats has the same shape before the first request.
        self._counters: Counter[str] = Counter(dict.fromkeys(_COUNTERS, 0))

    # --- lifecycle -------------------------------------------------------------------------------

    async def load(self) -> None:
        self._voice_resolver()  # a broken operator catalog fails at startup, not on a request
        self._client.open()

    async def warmup(self) -> None:
        """Nothing: a warmup request would spend the operator's Cartesia credits at every start."""

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def available(self) -> bool:
        return self._client.has_key

    # --- requests --------------------------------------------------------------------------------

    def _voice_resolver(self) -> VoiceResolver:
        if self._resolver is None:
            catalog = load_cartesia_catalog(self.settings.cartesia_voices_file)
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

    def _with_sample_rate(self, request: SynthesisRequest) -> SynthesisRequest:
        """``request`` with an explicit output rate: ``sample_rate=None`` means the engine's own.

        The server's SpeechService already fills it in; this covers callers that use the engine
        directly, and is the only place the Cartesia code applies the default.
        """
        if request.output.sample_rate is not None:
            return request
        output = dataclasses.replace(request.output, sample_rate=self.sample_rate)
        return dataclasses.replace(request, output=output)

    async def validate(self, request: SynthesisRequest) -> None:
        self._require_key()
        check_request(self._with_sample_rate(request))
        await self._voice_resolver().resolve(request.voice)

    def synthesize(self, request: SynthesisRequest) -> AsyncIterator[EncodedChunk]:
        return self._proxy(self._with_sample_rate(request))

    async def _proxy(self, request: SynthesisRequest) -> AsyncIterator[EncodedChunk]:
        # Repeated here (cheap: the voice is cached) so synthesize is safe without validate.
        self._require_key()
        check_request(request)
        voice_id = await self._voice_resolver().resolve(request.voice)
        body = build_tts_body(
            request,
            model_id=cartesia_model_id(request.model, self.settings.cartesia_model_id),
            voice_id=voice_id,
        )
        streaming = request.output.stream
        self._counters["requests"] += 1
        self._counters["stream_requests" if streaming else "bytes_requests"] += 1
        upstream = self._client.stream_sse(body) if streaming else self._client.stream_bytes(body)
        try:
            # aclosing: when our consumer stops early (client gone), the upstream response closes now.
            async with aclosing(upstream) as chunks:
                async for data in chunks:
                    self._counters["chunks"] += 1
                    self._counters["bytes"] += len(data)
                    yield EncodedChunk(data)
        except APIError as exc:
            self._counters["upstream_errors"] += 1
            if exc.status_code >= 500:  # the operator's problem (key, outage, network): say so in the log
                logger.warning("cartesia request %s failed: %s", request.request_id, exc.message)
            raise

    def stats(self) -> dict[str, Any]:
        return {
            **self._counters,
            "available": self.available,
            "http2": self._client.http2,
            "voice_list_fetches": self._upstream_voices.fetches if self._upstream_voices else 0,
        }
