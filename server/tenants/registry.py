"""Which tenant a bearer key belongs to, and keeping that current as the tenants file changes.

Keys are compared as SHA-256 hashes (the file holds nothing else), each in constant time and
against every hash, so timing says nothing about which key or tenant matched. ``TTS_API_KEYS``
stay valid: each is the ``default`` tenant, without limits (an admin unless a tenants file exists).

The file is re-read on SIGHUP and when its modification time, size or inode change (polled every
``keys_file_poll_s``; a Kubernetes Secret update swaps a symlink, which changes all three). A file
that cannot be used is refused with one error line saying why, and the tenants already loaded stay
in force. Open connections keep the tenant they authenticated as; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
from pathlib import Path
from typing import Any

from server.errors import AuthenticationFailed
from server.tenants import keyfile
from server.tenants.tenant import DEFAULT_TENANT, Tenant

logger = logging.getLogger(__name__)


class TenantRegistry:
    def __init__(self, settings: Any) -> None:
        self.path: Path | None = settings.keys_file
        self.poll_s: float = getattr(settings, "keys_file_poll_s", 5.0)
        self._plain = [key.get_secret_value().strip().encode() for key in settings.api_keys]
        # Without a tenants file every key may do everything (as before tenants existed).
        self.plain_tenant = DEFAULT_TENANT if self.path is None else Tenant(name="default", admin=False)
        self._hashes: list[tuple[bytes, Tenant]] = []
        self._tenants: dict[str, Tenant] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if self.path is not None:  # at startup a broken file stops the server (KeysFileError)
            self._stamp = _stamp(self.path)
            self._install(keyfile.load(self.path))

    @property
    def configured(self) -> bool:
        """Whether the API needs a key at all."""
        return bool(self._plain) or self.path is not None

    @property
    def tenants(self) -> dict[str, Tenant]:
        return dict(self._tenants)

    def authenticate(self, token: str) -> Tenant:
        supplied = token.strip().encode()
        digest = keyfile.hash_key(token.strip()).encode()
        hashes, plain = self._hashes, self._plain  # one consistent view, even across a reload
        found: Tenant | None = None
        for key in plain:  # every comparison runs: no early exit on a match
            if hmac.compare_digest(supplied, key):
                found = self.plain_tenant
        for stored, tenant in hashes:
            if hmac.compare_digest(digest, stored):
                found = tenant
        if found is None:
            raise AuthenticationFailed("Invalid API key.")
        return found

    # -- reloading ----------------------------------------------------------------------------
    def _install(self, tenants: list[Tenant]) -> None:
        self._hashes = [(digest.encode(), t) for t in tenants for digest in t.key_hashes]
        self._tenants = {t.name: t for t in tenants}

    def reload(self, reason: str = "reload") -> bool:
        """Re-read the file; on any problem keep the tenants in force and log why. Returns success."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        try:
            tenants = keyfile.load(self.path)
        except keyfile.KeysFileError as exc:
            self._stamp = stamp  # not retried until the file changes again
            logger.error(
                "tenants file %s rejected (%s): %s; keeping the %d tenants already loaded",
                self.path,
                reason,
                exc,
                len(self._tenants),
            )
            return False
        self._stamp = stamp
        self._install(tenants)
        logger.info("tenants file %s loaded (%s): %d tenants", self.path, reason, len(tenants))
        return True

    async def watch(self) -> None:
        """Poll the file for changes (runs for the app's life)."""
        if self.path is None or self.poll_s <= 0:
            return
        while True:
            await asyncio.sleep(self.poll_s)
            if _stamp(self.path) != self._stamp:
                await asyncio.to_thread(self.reload, "file changed")

    def install_sighup(self) -> bool:
        """Reload on SIGHUP (only where the loop runs in the main thread, as ``tts-server serve`` does)."""
        if self.path is None or not hasattr(signal, "SIGHUP"):
            return False
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        except (RuntimeError, ValueError):  # not the main thread (tests embedding the app)
            return False
        self._loop = loop
        return True

    def _on_sighup(self) -> None:
        asyncio.get_running_loop().create_task(asyncio.to_thread(self.reload, "SIGHUP"))

    def remove_sighup(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(signal.SIGHUP)
            self._loop = None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
