"""Together voice names -> Cartesia voice UUIDs.

Together addresses Sonic voices by name ("friendly sidekick"); Cartesia by UUID. Resolution order:

1. a UUID is used as is (it may be a voice of the operator's own account);
2. the catalog: ``voices/cartesia.json`` (Together's documented names), then the operator's extra
   file (``TTS_CARTESIA_VOICES_FILE``), whose entries win;
3. Cartesia's GET /voices, matched by name case-insensitively and cached for a TTL, so that an
   unknown name costs at most one upstream listing per TTL.

A name found nowhere is a 400 before any synthesis request is made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import voices as packaged_voices
from engines.base import Voice
from engines.errors import InvalidVoice, ServiceUnavailable, TTSError

logger = logging.getLogger(__name__)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
#: Cartesia's gender vocabulary -> the one /v1/voices uses.
_GENDERS = {"feminine": "female", "masculine": "male", "female": "female", "male": "male"}


class VoiceCatalogError(ServiceUnavailable):
    code = "voice_catalog_invalid"


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value.strip()))


def normalize_name(name: str) -> str:
    """Case- and spacing-insensitive key: "Friendly  Sidekick" == "friendly sidekick"."""
    return " ".join(name.casefold().split())


def _voice_from_entry(entry: Any, source: str) -> Voice:
    if not isinstance(entry, dict):
        raise VoiceCatalogError(f"{source}: every voice must be an object with 'name' and 'id'.")
    name, voice_id = entry.get("name"), entry.get("id")
    if not isinstance(name, str) or not name.strip():
        raise VoiceCatalogError(f"{source}: a voice has no 'name'.")
    if not isinstance(voice_id, str) or not is_uuid(voice_id):
        raise VoiceCatalogError(f"{source}: voice '{name}' needs a Cartesia voice UUID as 'id'.")
    return Voice(
        id=voice_id.strip().lower(),
        name=name.strip(),
        language=entry.get("language"),
        gender=_GENDERS.get(str(entry.get("gender") or "").lower()),
        description=entry.get("description"),
    )


def parse_catalog_doc(doc: Any, source: str) -> list[Voice]:
    """``{"voices": [{"name", "id", "language"?, "gender"?, "description"?}, ...]}``, already decoded."""
    entries = doc.get("voices") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise VoiceCatalogError(f"{source} must be an object with a 'voices' list.")
    return [_voice_from_entry(entry, source) for entry in entries]


def parse_catalog(text: str, source: str) -> list[Voice]:
    """A catalog file's text (see :func:`parse_catalog_doc`)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise VoiceCatalogError(f"{source} is not valid JSON: {exc}") from exc
    return parse_catalog_doc(doc, source)


def load_cartesia_catalog(extra_file: Path | None) -> dict[str, Voice]:
    """The packaged catalog (``voices.load_catalog("cartesia")``) plus the operator's file.

    Later entries override earlier ones by normalized name, so the operator's file wins.
    """
    catalog = parse_catalog_doc(packaged_voices.load_catalog("cartesia"), "voices/cartesia.json")
    if extra_file is not None:
        path = Path(extra_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise VoiceCatalogError(f"Cannot read TTS_CARTESIA_VOICES_FILE {path}: {exc.strerror}.") from exc
        catalog += parse_catalog(text, str(path))
    return {normalize_name(v.name): v for v in catalog}


def voice_from_cartesia(item: dict[str, Any]) -> Voice:
    """One entry of Cartesia's GET /voices answer."""
    return Voice(
        id=str(item["id"]),
        name=str(item["name"]),
        language=item.get("language") if isinstance(item.get("language"), str) else None,
        gender=_GENDERS.get(str(item.get("gender") or "").lower()),
        description=item.get("description") if isinstance(item.get("description"), str) else None,
    )


class UpstreamVoiceCache:
    """Cartesia's voice list by normalized name, refreshed at most once per ``ttl_s``."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._by_name: dict[str, Voice] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._ttl_s

    async def _refresh(self) -> None:
        async with self._lock:  # one listing for many concurrent lookups
            if self._fresh():
                return
            self.fetches += 1
            try:
                items = await self._fetch()
            except TTSError:
                if self._fetched_at is None:
                    raise
                # A stale list still resolves names that existed a moment ago; retry after a TTL.
                logger.warning("refreshing Cartesia's voice list failed; keeping the previous one")
                self._fetched_at = self._clock()
                return
            by_name: dict[str, Voice] = {}
            # The operator's own voices win over public ones that happen to share a name.
            for item in sorted(items, key=lambda i: not i.get("is_owner")):
                by_name.setdefault(normalize_name(str(item["name"])), voice_from_cartesia(item))
            self._by_name = by_name
            self._fetched_at = self._clock()

    async def lookup(self, name: str) -> Voice | None:
        if not self._fresh():
            await self._refresh()
        return self._by_name.get(normalize_name(name))

    def cached(self) -> list[Voice]:
        return list(self._by_name.values())


class VoiceResolver:
    def __init__(self, catalog: dict[str, Voice], upstream: UpstreamVoiceCache | None) -> None:
        self._catalog = catalog
        self._upstream = upstream

    async def resolve(self, voice: str) -> str:
        """The Cartesia voice UUID for ``voice`` (a UUID or a name); InvalidVoice when unknown."""
        if is_uuid(voice):
            return voice.strip().lower()
        found = self._catalog.get(normalize_name(voice))
        if found is None and self._upstream is not None:
            found = await self._upstream.lookup(voice)
        if found is None:
            raise InvalidVoice(
                f"Voice '{voice}' is not a Cartesia voice UUID and no Cartesia voice has that name. "
                "See GET /v1/voices?model=cartesia/sonic."
            )
        return found.id

    def voices(self) -> list[Voice]:
        """Every name a request may use: the catalog, then cached upstream voices it lacks."""
        listed: dict[str, Voice] = dict(self._catalog)
        extra: Iterable[Voice] = self._upstream.cached() if self._upstream is not None else ()
        for voice in extra:
            listed.setdefault(normalize_name(voice.name), voice)
        return list(listed.values())
