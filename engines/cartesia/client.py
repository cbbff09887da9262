"""HTTP to Cartesia: one shared ``httpx.AsyncClient`` per engine, streaming in both directions.

Nothing here buffers a clip: audio is handed on chunk by chunk as the socket delivers it, and
closing the consuming iterator closes the upstream response (so Cartesia stops generating).
The only retry is on a failed *connect*: then the request never reached Cartesia, nothing was
billed and nothing was sent to our client. Once a response has started there are no retries.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from engines.base import WordTimings
from engines.cartesia import sse, upstream_errors
from engines.errors import ServiceUnavailable, UpstreamError

if TYPE_CHECKING:
    from engines.cartesia.settings import CartesiaSettings

logger = logging.getLogger(__name__)

#: Extra attempts after a connect failure (connection refused, DNS, connect timeout).
CONNECT_RETRIES = 1
#: Cartesia's page size limit for GET /voices.
VOICES_PAGE_SIZE = 100
#: A bound on pagination, so a misbehaving upstream cannot keep us looping.
MAX_VOICE_PAGES = 50


def _h2_installed() -> bool:
    return importlib.util.find_spec("h2") is not None


class CartesiaClient:
    """Cartesia's three endpoints the proxy needs: /tts/bytes, /tts/sse and /voices."""

    def __init__(self, settings: CartesiaSettings) -> None:
        key = settings.api_key
        self._api_key: str | None = key.get_secret_value() if key is not None else None
        self._settings = settings
        self._http: httpx.AsyncClient | None = None

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    @property
    def http2(self) -> bool:
        return self._settings.http2 and _h2_installed()

    def open(self) -> None:
        """Create the shared connection pool (no network traffic yet)."""
        if self._http is not None:
            return
        s = self._settings
        headers = {"Cartesia-Version": s.version, "User-Agent": "tts-server (cartesia proxy)"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.AsyncClient(
            base_url=s.base_url.rstrip("/"),
            headers=headers,
            http2=self.http2,
            timeout=httpx.Timeout(
                connect=s.connect_timeout_s,
                read=s.read_timeout_s,
                write=s.read_timeout_s,
                pool=s.connect_timeout_s,
            ),
            limits=httpx.Limits(max_connections=s.max_connections, max_keepalive_connections=20),
            # Redirects would resend the bearer key to wherever they point: Cartesia has none to follow.
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    def _require_http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise ServiceUnavailable("The Cartesia proxy is not loaded yet.")
        return self._http

    async def _send(self, request: httpx.Request) -> httpx.Response:
        http = self._require_http()
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                return await http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == CONNECT_RETRIES:
                    raise upstream_errors.from_transport(exc) from exc
                logger.warning("connecting to Cartesia failed (%s); retrying once", type(exc).__name__)
            except httpx.TransportError as exc:
                raise upstream_errors.from_transport(exc) from exc
        raise AssertionError("unreachable")  # the loop always returns or raises

    @asynccontextmanager
    async def _open(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """A streamed response with a 2xx status; any other status is raised as our error."""
        request = self._require_http().build_request(method, path, **kwargs)
        response = await self._send(request)
        try:
            if not response.is_success:  # redirects are not followed, so a 3xx is a failure too
                try:
                    body = await response.aread()
                except httpx.TransportError:
                    body = b""  # the status alone decides the mapping
                raise upstream_errors.from_response(response.status_code, body, response.headers, self._api_key)
            yield response
        finally:
            await response.aclose()

    async def stream_bytes(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """POST /tts/bytes: the audio file (wav/mp3/raw), yielded as the socket delivers it."""
        async with self._open("POST", "/tts/bytes", json=body, headers={"Accept": "audio/*"}) as response:
            try:
                async for data in response.aiter_bytes():
                    if data:
                        yield data
            except httpx.TransportError as exc:
                raise upstream_errors.from_transport(exc) from exc

    async def stream_sse(self, body: dict[str, Any]) -> AsyncIterator[bytes | WordTimings]:
        """POST /tts/sse: each ``chunk`` event's decoded audio (and word timings), as events complete."""
        async with self._open("POST", "/tts/sse", json=body, headers={"Accept": "text/event-stream"}) as response:
            try:
                async for audio in sse.iter_audio(response.aiter_lines(), api_key=self._api_key):
                    yield audio
            except httpx.TransportError as exc:
                raise upstream_errors.from_transport(exc) from exc

    async def list_voices(self) -> list[dict[str, Any]]:
        """GET /voices, every page. Accepts the paginated object and the older bare list."""
        voices: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": VOICES_PAGE_SIZE}
        for _page in range(MAX_VOICE_PAGES):
            async with self._open("GET", "/voices", params=params) as response:
                try:
                    raw = await response.aread()
                except httpx.TransportError as exc:
                    raise upstream_errors.from_transport(exc) from exc
            try:
                payload = json.loads(raw)
            except ValueError as exc:
                raise UpstreamError("Cartesia's voice list is not JSON.") from exc
            # 2024 API versions answer a bare list; later ones {"data": [...], "has_more": bool}.
            page = payload if isinstance(payload, list) else payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(page, list):
                raise UpstreamError("Cartesia's voice list has an unexpected shape.")
            voices.extend(v for v in page if isinstance(v, dict) and v.get("id") and v.get("name"))
            has_more = isinstance(payload, dict) and bool(payload.get("has_more"))
            if not has_more or not page:
                break
            params = {"limit": VOICES_PAGE_SIZE, "starting_after": page[-1].get("id")}
        return voices
